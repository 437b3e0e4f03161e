package sqlite

import (
	"database/sql"
	"runtime"
	"sync"
	"time"
	"weak"

	"github.com/posthorn/posthorn/event"
)

// The dispatcher reads every event the log reader stores (Unformed). While
// the log reader catches up, reading them back through database/sql cost
// a tenth of the machine; so Commit keeps what forming a batch needs of the
// events it stored in a bounded ring, and Unformed serves from it when it
// can. The ring only ever holds committed events with consecutive
// positions; anything else is read from the database as before, so a
// restart, or a dispatcher that fell behind, is merely slower.

// recentMax bounds the ring: about 10 MB.
const recentMax = 1 << 17

type recentRing struct {
	mu  sync.Mutex
	buf []Pending // buf[i].Seq == buf[0].Seq + i
}

// rings maps a weak *Store to its ring (the Store type is shared with
// other features; the ring is the outbox's own). The entry goes when the
// store is garbage.
var rings sync.Map

func (s *Store) recent() *recentRing {
	key := weak.Make(s)
	if r, ok := rings.Load(key); ok {
		return r.(*recentRing)
	}
	r, loaded := rings.LoadOrStore(key, &recentRing{})
	if !loaded {
		runtime.AddCleanup(s, func(k weak.Pointer[Store]) { rings.Delete(k) }, key)
	}
	return r.(*recentRing)
}

// noteStored appends e to stored if the insert res added a row (a repeated
// event adds none).
func noteStored(stored []Pending, res sql.Result, e *event.Event, ns int64) []Pending {
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return stored
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return stored
	}
	return append(stored, Pending{Seq: seq, ID: e.ID, Type: e.Type, Time: time.Unix(0, ns).UTC()})
}

// add appends committed events. Positions that do not follow on restart
// the ring.
func (r *recentRing) add(evs []Pending) {
	if len(evs) == 0 {
		return
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq != evs[0].Seq+int64(i) {
			r.mu.Lock()
			r.buf = r.buf[:0]
			r.mu.Unlock()
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.buf); n > 0 && r.buf[n-1].Seq+1 != evs[0].Seq {
		r.buf = r.buf[:0]
	}
	r.buf = append(r.buf, evs...)
	if over := len(r.buf) - recentMax; over > 0 {
		// Keep the newest; copy down now and then rather than on every add.
		if over > recentMax/4 || cap(r.buf) > 2*recentMax {
			r.buf = append(r.buf[:0:0], r.buf[over:]...)
		} else {
			r.buf = r.buf[over:]
		}
	}
}

// get returns up to limit events after position `after` when the ring
// holds the one right after it; ok is false when the database must answer.
func (r *recentRing) get(after int64, limit int) ([]Pending, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 {
		return nil, false
	}
	first, last := r.buf[0].Seq, r.buf[len(r.buf)-1].Seq
	if after+1 < first || after > last {
		return nil, false
	}
	i := int(after + 1 - first)
	j := min(len(r.buf), i+limit)
	return append([]Pending(nil), r.buf[i:j]...), true
}
