package e2e

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
	"github.com/posthorn/posthorn/sqlite"
)

// fillBlocks puts n registered addresses on the suppression list of the
// store at db, in one transaction: `blocks import` would take minutes for
// a million, and the RCPT decision only reads the rows.
func fillBlocks(b *testing.B, db string, n int) {
	b.Helper()
	st, err := sqlite.Open(db, sqlite.Options{}) // creates the schema
	if err != nil {
		b.Fatal(err)
	}
	st.Close()
	conn, err := sql.Open("sqlite3", "file:"+db+"?_busy_timeout=5000")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.Begin()
	if err != nil {
		b.Fatal(err)
	}
	ins, err := tx.Prepare(`INSERT INTO blocks (address, reason, created_at, scheduled_at, registered_at) VALUES (?, 'manual', ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixNano()
	for i := range n {
		if _, err := ins.Exec(fmt.Sprintf("user%07d@list.example", i), now, now, now); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// startOutboundServe runs serve with only the outbound milter role.
func startOutboundServe(b *testing.B, dir string, blocked int) (addr string) {
	b.Helper()
	port := freePortB(b)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	db := filepath.Join(dir, "posthorn.db")
	maillog := filepath.Join(dir, "maillog")
	if err := os.WriteFile(maillog, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(dir, "posthorn.toml")
	text := fmt.Sprintf("hostname = \"bench\"\n[store]\npath = %q\n[maillog]\npath = %q\nstart = \"end\"\n[milter]\noutbound = \"inet:%s\"\n[log]\nlevel = \"warn\"\n", db, maillog, addr)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	fillBlocks(b, db, blocked)
	s := runServeB(b, dir, cfg, db)
	s.waitListen(b, addr)
	return addr
}

// BenchmarkSuppressionRCPT measures what a suppression list of 1,000,000
// addresses adds to the outbound role's RCPT decision, as Postfix's smtpd
// sees it: a milter client (in place of smtpd) sends RCPTs of addresses
// not on the list, alternately to a serve whose list is empty and to one
// whose list holds a million, and times each answer. Target: the p50s
// differ by at most 0.1 ms.
func BenchmarkSuppressionRCPT(b *testing.B) {
	const listed, samples = 1000000, 4000
	addrs := [2]string{
		startOutboundServe(b, b.TempDir(), 0),
		startOutboundServe(b, b.TempDir(), listed),
	}
	var sessions [2]*gomilter.ClientSession
	for i, a := range addrs {
		c := gomilter.NewClient("tcp", a, gomilter.WithActions(gomilter.AllClientSupportedActionMasks))
		s, err := c.Session(gomilter.NewMacroBag())
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Conn("client.example", gomilter.FamilyInet, 40000, "192.0.2.7"); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Helo("client.example"); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Mail("app@shop.test", ""); err != nil {
			b.Fatal(err)
		}
		sessions[i] = s
	}
	rcpt := func(i int, to string) time.Duration {
		start := time.Now()
		a, err := sessions[i].Rcpt(to, "")
		d := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if a.Type != gomilter.ActionContinue {
			b.Fatalf("RCPT %s: %s", to, a)
		}
		return d
	}
	// Warm up both: connections, prepared statements, page cache.
	for i := range 200 {
		rcpt(0, fmt.Sprintf("warm%d@other.example", i))
		rcpt(1, fmt.Sprintf("warm%d@other.example", i))
	}
	var lat [2][]time.Duration
	b.ResetTimer()
	for range b.N {
		lat = [2][]time.Duration{}
		for i := range samples {
			// Addresses next to listed ones in the index's order, so the
			// look-up descends the whole B-tree.
			to := fmt.Sprintf("user%07dx@list.example", (i*7919)%listed)
			first := i % 2
			lat[first] = append(lat[first], rcpt(first, to))
			lat[1-first] = append(lat[1-first], rcpt(1-first, to))
		}
	}
	b.StopTimer()
	p0, p1 := percentile(lat[0], 0.5), percentile(lat[1], 0.5)
	added := p1 - p0
	b.ReportMetric(float64(p0.Nanoseconds())/1e6, "ms-p50-empty-list")
	b.ReportMetric(float64(p1.Nanoseconds())/1e6, "ms-p50-1M-list")
	b.ReportMetric(float64(added.Nanoseconds())/1e6, "ms-added-p50")
	b.Logf("RCPT decision p50: empty list %v, 1,000,000 addresses %v (p90 %v / %v): adds %v",
		p0, p1, percentile(lat[0], 0.9), percentile(lat[1], 0.9), added)
	if added > 100*time.Microsecond {
		b.Errorf("a list of %d adds %v to the RCPT decision's p50, want at most 0.1 ms", listed, added)
	}
}
