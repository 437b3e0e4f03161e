package logtail

import (
	"errors"
	"io/fs"
	"log/slog"

	"github.com/nxadm/tail/watch"
	"gopkg.in/tomb.v1"
)

// Why FileSource reads the file itself and takes only change notification
// from github.com/nxadm/tail (v1.4.11, read in the module cache):
//
//   - tail.Line has Text, Num, SeekInfo and Time but no file identity, so a
//     line read just before a rotation cannot be told from one read just
//     after it; the cursor needs (dev, inode, offset).
//   - SeekInfo.Offset comes from Tell(), computed from the shared file and
//     reader after the line was read and while the tailing goroutine may
//     already be reopening; with MaxLineSize every piece of a cut line gets
//     the offset of the whole line's end.
//   - On a rename, waitForChanges selects between the Modified and Deleted
//     channels; when both are ready Go picks either, and on Deleted it calls
//     reopen(), which closes the old descriptor without reading what was
//     appended since the last read. That is the end-of-log loss of nxadm#28,
//     and no option turns it off. reopen() also discards a held partial line.
//   - Config.Location applies only to the first open: it cannot resume in
//     the rotated file found by inode and then continue with the new one.
//   - Without CompleteLines, a partial line at EOF is sent and the file is
//     sought to its end; with it, the partial is dropped on any reopen.
//   - Measured against a real postlogd (rename, SIGHUP to master, gzip a
//     second later, as `postfix logrotate` does, six times under load):
//     TailFile with ReOpen, Follow and CompleteLines stopped at "Waiting for
//     ... to appear" after the first rotation in every run, and with 300 ms
//     between rename and SIGHUP it also skipped the old file's last lines.
//     FileSource delivered every line once, in order, with polling off.
//
// The watch package is used for wake-ups: its shared inotify tracker
// watches the path (Watch, Events, RemoveWatch), and BlockUntilExists waits
// for a new file to appear. A live maillog is written a line at a time, and
// an inotify event per line went through three goroutines and a stat(2)
// before it woke the reader, beside the SMTP sessions Postfix was logging:
// the watch is therefore armed only while the reader waits, and the first
// event after arming wakes it and disarms (want, run). InotifyFileWatcher's
// ChangeEvents is not used: it stats the path at every event, and it removes
// its watch from a goroutine of its own, after its tomb dies, which a watch
// armed again at once would race with. One hazard of that package remains:
// it calls os.Exit (util.Fatal) if fsnotify cannot create its inotify
// instance, which probing inotify_init1 before use makes unlikely
// (inotifyAvailable). Correctness never depends on a notification: the
// poll timer re-checks the file regardless.

// notifier turns change notifications for a path into non-blocking sends
// on wake, one per want. It runs until stop is called.
type notifier struct {
	t    tomb.Tomb
	want chan struct{}
	done chan struct{}
}

func startNotifier(path string, wake chan<- struct{}, log *slog.Logger) *notifier {
	n := &notifier{want: make(chan struct{}, 1), done: make(chan struct{})}
	if err := inotifyAvailable(); err != nil {
		log.Warn("file change notification unavailable; polling only", "path", path, "err", err)
		close(n.done)
		return n
	}
	go n.run(path, wake, log)
	return n
}

func (n *notifier) stop() {
	n.t.Kill(nil)
	<-n.done
}

// arm asks for a wake-up at the next change of the file (or at once, for
// a change the reader may have missed). It never blocks.
func (n *notifier) arm() {
	select {
	case n.want <- struct{}{}:
	default:
	}
}

func (n *notifier) run(path string, wake chan<- struct{}, log *slog.Logger) {
	defer close(n.done)
	w := watch.NewInotifyFileWatcher(path)
	for {
		select {
		case <-n.want:
		case <-n.t.Dying():
			return
		}
		if err := w.BlockUntilExists(&n.t); err != nil {
			if !errors.Is(err, tomb.ErrDying) {
				log.Warn("file change notification failed; polling only", "path", path, "err", err)
			}
			return
		}
		if err := watch.Watch(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				n.arm() // gone between the two calls: wait for the next file
				continue
			}
			log.Warn("file change notification failed; polling only", "path", path, "err", err)
			return
		}
		events := watch.Events(path)
		// What was written before the watch was armed had no event.
		signal(wake)
		select {
		case <-events:
			// A write, a change of attributes, a rename or a removal:
			// the reader tells them apart.
			signal(wake)
		case <-n.t.Dying():
			watch.RemoveWatch(path)
			return
		}
		watch.RemoveWatch(path)
	}
}

// signal wakes a reader without ever blocking: one pending wake-up is as
// good as many.
func signal(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}
