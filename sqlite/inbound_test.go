package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

var inboundTime = time.Date(2025, 6, 1, 9, 30, 0, 0, time.FixedZone("JST", 9*3600))

// bigAttachment spans several chunks and ends in a partial one.
var bigAttachment = bytes.Repeat([]byte("0123456789abcdef"), (2*chunkSize+1000)/16)

func testMessage() *event.InboundMessage {
	return &event.InboundMessage{
		Host: "mx.test", QueueID: "4bX1", Received: inboundTime, ClientAddr: "192.0.2.7",
		EnvelopeFrom: "s@customer.example",
		Recipients: []event.InboundRecipient{
			{Address: "orders@shop.example", Filters: []string{"orders", "all"}},
			{Address: "nobody@shop.example"},
			{Address: "billing@shop.example", Filters: []string{"all"}},
		},
		Size:      12345,
		Headers:   []event.Header{{Name: "From", Value: "山田 <a@customer.example>"}, {Name: "Subject", Value: "請求書"}},
		From:      "山田 <a@customer.example>",
		Subject:   "請求書",
		MessageID: "<m1@customer.example>",
		Text:      "本文\n",
		HTML:      "<p>本文</p>",
		Attachments: []event.Attachment{
			{Filename: "請求書.pdf", ContentType: "application/pdf", Size: int64(len(bigAttachment)), Content: bytes.NewReader(bigAttachment)},
			{Filename: "", ContentType: "text/plain", Size: 0, Content: strings.NewReader("")},
		},
		Problems: []string{"part 3: unexpected EOF"},
	}
}

func logLines(t *testing.T, s *Store, q event.InboundQuery) string {
	t.Helper()
	rows, err := s.InboundLog(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%s %s from=%q to=%s host=%s mid=%s qid=%s filter=%q reason=%q\n",
			r.Time.Format(time.RFC3339), r.Status, r.From, r.To, r.Host, r.MessageID, r.QueueID, r.Filter, r.Reason)
	}
	return b.String()
}

func TestCaptureAndPost(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	if err := s.Capture(ctx, testMessage()); err != nil {
		t.Fatal(err)
	}
	want := `2025-06-01T09:30:00+09:00 queued from="山田 <a@customer.example>" to=orders@shop.example host=mx.test mid=<m1@customer.example> qid=4bX1 filter="orders" reason=""
2025-06-01T09:30:00+09:00 queued from="山田 <a@customer.example>" to=orders@shop.example host=mx.test mid=<m1@customer.example> qid=4bX1 filter="all" reason=""
2025-06-01T09:30:00+09:00 denied from="山田 <a@customer.example>" to=nobody@shop.example host=mx.test mid=<m1@customer.example> qid=4bX1 filter="" reason="no filter matched"
2025-06-01T09:30:00+09:00 queued from="山田 <a@customer.example>" to=billing@shop.example host=mx.test mid=<m1@customer.example> qid=4bX1 filter="all" reason=""
`
	if got := logLines(t, s, event.InboundQuery{}); got != want {
		t.Errorf("log after capture:\n%s\nwant\n%s", got, want)
	}

	// Posts are due from the capture on, one per filter, with the
	// recipients each matched.
	if due, err := s.DueInbound(ctx, inboundTime.Add(-time.Second), nil, 10); err != nil || len(due) != 0 {
		t.Fatalf("due before the capture: %v %v", due, err)
	}
	due, err := s.DueInbound(ctx, inboundTime, nil, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("due: %+v %v", due, err)
	}
	if due[0].Filter != "orders" || fmt.Sprint(due[0].Recipients) != "[orders@shop.example]" ||
		due[1].Filter != "all" || fmt.Sprint(due[1].Recipients) != "[orders@shop.example billing@shop.example]" ||
		!due[0].Created.Equal(inboundTime) || !strings.HasPrefix(due[0].WebhookID, "msg_") || due[0].WebhookID == due[1].WebhookID {
		t.Errorf("due posts %+v", due)
	}
	if next, ok, err := s.NextInboundDue(ctx, nil); err != nil || !ok || !next.Equal(inboundTime) {
		t.Errorf("NextInboundDue = %v %v %v", next, ok, err)
	}

	m, err := s.InboundMessage(ctx, due[0].Message)
	if err != nil {
		t.Fatal(err)
	}
	in := testMessage()
	if m.Subject != in.Subject || m.Text != in.Text || m.HTML != in.HTML || m.From != in.From || m.MessageID != in.MessageID ||
		m.EnvelopeFrom != in.EnvelopeFrom || fmt.Sprint(m.Headers) != fmt.Sprint(in.Headers) || fmt.Sprint(m.Problems) != fmt.Sprint(in.Problems) ||
		m.QueueID != "4bX1" || m.Size != 12345 || len(m.Attachments) != 2 {
		t.Fatalf("message read back: %+v", m)
	}
	for i, a := range m.Attachments {
		got, err := io.ReadAll(a.Content)
		if err != nil {
			t.Fatal(err)
		}
		wantData := map[int][]byte{0: bigAttachment, 1: {}}[i]
		if !bytes.Equal(got, wantData) || a.Size != int64(len(wantData)) || a.Filename != in.Attachments[i].Filename || a.ContentType != in.Attachments[i].ContentType {
			t.Errorf("attachment %d: %q %s %d bytes (want %d)", i, a.Filename, a.ContentType, len(got), len(wantData))
		}
	}

	// The first post fails for now, the second succeeds.
	later := inboundTime.Add(time.Minute)
	if err := s.RecordInbound(ctx, InboundAttempt{Post: due[0].ID, At: inboundTime, Attempted: true, State: "deferred",
		Status: 503, Reason: "HTTP 503 Service Unavailable", Next: later}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordInbound(ctx, InboundAttempt{Post: due[1].ID, At: inboundTime, Attempted: true, State: "succeeded", Status: 200}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.DueInbound(ctx, inboundTime, nil, 10); len(got) != 0 {
		t.Errorf("due after the attempts: %+v", got)
	}
	got, _ := s.DueInbound(ctx, later, nil, 10)
	if len(got) != 1 || got[0].ID != due[0].ID || got[0].Attempts != 1 || got[0].LastReason != "HTTP 503 Service Unavailable" {
		t.Errorf("due later: %+v", got)
	}
	if got := logLines(t, s, event.InboundQuery{Statuses: []event.InboundStatus{event.InboundDeferred, event.InboundSucceeded}}); got !=
		`2025-06-01T09:30:00+09:00 deferred from="山田 <a@customer.example>" to=orders@shop.example host=mx.test mid=<m1@customer.example> qid=4bX1 filter="orders" reason="HTTP 503 Service Unavailable"
2025-06-01T09:30:00+09:00 succeeded from="山田 <a@customer.example>" to=orders@shop.example host=mx.test mid=<m1@customer.example> qid=4bX1 filter="all" reason=""
2025-06-01T09:30:00+09:00 succeeded from="山田 <a@customer.example>" to=billing@shop.example host=mx.test mid=<m1@customer.example> qid=4bX1 filter="all" reason=""
` {
		t.Errorf("log after the attempts:\n%s", got)
	}
	// A message stays while one of its posts is pending ...
	if _, err := s.InboundMessage(ctx, due[0].Message); err != nil {
		t.Errorf("message gone while a post is pending: %v", err)
	}
	// ... and its content goes with its last post; the log stays.
	if err := s.RecordInbound(ctx, InboundAttempt{Post: due[0].ID, At: later, Attempted: false, State: "failed",
		Reason: "retry period over: HTTP 503 Service Unavailable"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.InboundMessage(ctx, due[0].Message); err == nil {
		t.Error("message content kept after its last post ended")
	}
	for _, table := range []string{"inbound_messages", "inbound_attachments", "inbound_chunks", "inbound_posts"} {
		var n int
		if err := s.w.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d rows left (%v)", table, n, err)
		}
	}
	var linked int
	if err := s.w.QueryRow("SELECT count(*) FROM inbound_log WHERE post IS NOT NULL").Scan(&linked); err != nil || linked != 0 {
		t.Errorf("%d log rows still name a post (%v)", linked, err)
	}
	if got := logLines(t, s, event.InboundQuery{Statuses: []event.InboundStatus{event.InboundFailed}}); !strings.Contains(got, `failed from="山田 <a@customer.example>" to=orders@shop.example`) ||
		!strings.Contains(got, "retry period over") {
		t.Errorf("failed rows:\n%s", got)
	}
	if n, _ := s.PendingInbound(ctx); n != 0 {
		t.Errorf("pending %d", n)
	}
	if err := s.RecordInbound(ctx, InboundAttempt{Post: 999, State: "failed"}); err == nil {
		t.Error("RecordInbound of an unknown post succeeded")
	}
}

// TestRecordInboundTogether: the outcomes of a round are recorded in one
// transaction. Both POSTs of a message ending together drop the message
// once, at the second; one that is unknown fails the whole record.
func TestRecordInboundTogether(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	if err := s.Capture(ctx, testMessage()); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueInbound(ctx, inboundTime, nil, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("due: %+v %v", due, err)
	}
	ok := func(p InboundPost) InboundAttempt {
		return InboundAttempt{Post: p.ID, At: inboundTime, Attempted: true, State: "succeeded", Status: 200}
	}
	if err := s.RecordInbound(ctx, ok(due[0]), InboundAttempt{Post: 999, State: "succeeded"}); err == nil ||
		!strings.Contains(err.Error(), "post 999") {
		t.Errorf("a record with an unknown post: %v", err)
	}
	if got, _ := s.DueInbound(ctx, inboundTime, nil, 10); len(got) != 2 {
		t.Errorf("after the failed record %d posts are due, want both still", len(got))
	}
	if err := s.RecordInbound(ctx, ok(due[0]), ok(due[1])); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"inbound_messages", "inbound_attachments", "inbound_chunks", "inbound_posts"} {
		var n int
		if err := s.w.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d rows left (%v)", table, n, err)
		}
	}
	if got := logLines(t, s, event.InboundQuery{Statuses: []event.InboundStatus{event.InboundSucceeded}}); strings.Count(got, "succeeded") != 3 {
		t.Errorf("succeeded rows:\n%s", got)
	}
}

// TestCaptureAllOrNothing: a capture that fails half-way (its attachment
// cannot be read) leaves nothing behind.
func TestCaptureAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	m := testMessage()
	m.Attachments[0].Content = io.MultiReader(bytes.NewReader(bigAttachment[:chunkSize+10]), errReader{})
	if err := s.Capture(ctx, m); err == nil || !strings.Contains(err.Error(), "read attachment 1: disk gone") {
		t.Fatalf("Capture = %v", err)
	}
	for _, table := range []string{"inbound_messages", "inbound_attachments", "inbound_chunks", "inbound_posts", "inbound_log"} {
		var n int
		if err := s.w.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d rows after a failed capture", table, n)
		}
	}
	// A capture past its deadline (the milter has answered 451 by then)
	// stores nothing either.
	expired, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Capture(expired, testMessage()); !errors.Is(err, context.Canceled) {
		t.Errorf("Capture after the deadline = %v", err)
	}
	for _, table := range []string{"inbound_messages", "inbound_log"} {
		var n int
		if err := s.w.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d rows after a capture past its deadline", table, n)
		}
	}
	m = testMessage()
	for i := range m.Recipients {
		m.Recipients[i].Filters = nil
	}
	if err := s.Capture(ctx, m); err == nil {
		t.Error("Capture of a message no filter matched succeeded")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk gone") }

func TestLogInboundQuery(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	var rows []event.InboundLogEntry
	for i := range 5 {
		rows = append(rows, event.InboundLogEntry{Time: inboundTime.Add(time.Duration(i) * time.Hour), Status: event.InboundDenied,
			To: fmt.Sprintf("u%d@other.example", i), Host: "mx.test", Reason: "recipient domain not allowed"})
	}
	if err := s.LogInbound(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := s.Capture(ctx, testMessage()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q    event.InboundQuery
		want int
	}{
		{event.InboundQuery{}, 9},
		{event.InboundQuery{Since: inboundTime.Add(time.Hour)}, 4},
		{event.InboundQuery{Until: inboundTime.Add(time.Hour)}, 5},
		{event.InboundQuery{Since: inboundTime, Until: inboundTime.Add(time.Second), Statuses: []event.InboundStatus{event.InboundQueued}}, 3},
		{event.InboundQuery{Statuses: []event.InboundStatus{event.InboundDenied}, Limit: 2}, 2},
		{event.InboundQuery{AfterID: 3}, 6},
	} {
		got, err := s.InboundLog(ctx, c.q)
		if err != nil || len(got) != c.want {
			t.Errorf("InboundLog(%+v) = %d rows (%v), want %d", c.q, len(got), err, c.want)
		}
	}
	if _, err := s.InboundLog(ctx, event.InboundQuery{Statuses: []event.InboundStatus{"lost"}}); err == nil {
		t.Error("unknown status accepted")
	}
	if err := s.LogInbound(ctx, []event.InboundLogEntry{{Status: "maybe", Time: inboundTime}}); err == nil {
		t.Error("LogInbound accepted an unknown status")
	}
}

func TestInboundSettingsStore(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	if got, ok, err := s.InboundSettings(ctx); err != nil || ok || len(got.Domains) != 0 {
		t.Fatalf("before saving: %v %v %v", got, ok, err)
	}
	in := settings.Inbound{Domains: []string{"Shop.Example."}, LogDenied: true, Filters: []settings.InboundFilter{
		settings.NewInboundFilter("orders", "https://h.example/in", settings.Condition{Header: "To", Pattern: "^orders@"}),
	}}
	in.Filters[0].APIKey = "k-123"
	if err := s.SaveInboundSettings(ctx, in, false); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.InboundSettings(ctx)
	if err != nil || !ok || fmt.Sprint(got.Domains) != "[shop.example]" || string(got.Filters[0].APIKey) != "k-123" || !got.LogDenied {
		t.Errorf("read back %v %v %v", got, ok, err)
	}
	bad := in
	bad.Filters = []settings.InboundFilter{settings.NewInboundFilter("x", "http://h.example/", settings.Condition{Header: "To", Pattern: "("})}
	err = s.SaveInboundSettings(ctx, bad, false)
	var ie settings.InboundErrors
	if !errors.As(err, &ie) || len(ie) != 2 {
		t.Errorf("invalid settings: %v", err)
	}
	if err := s.SaveInboundSettings(ctx, settings.Inbound{Filters: []settings.InboundFilter{settings.NewInboundFilter("x", "http://h.example/", settings.Condition{Header: "To", Pattern: "."})}}, true); err != nil {
		t.Errorf("http endpoint with allowHTTP: %v", err)
	}
}

func TestObservations(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	o := event.Observation{Host: "mx.test", QueueID: "ABC", Time: inboundTime, EnvelopeFrom: "b@shop.example",
		Recipients: []string{"a@x.example", "b@y.example"}, From: "Shop <s@shop.example>", Subject: "ご注文", MessageID: "<1@shop>", APIData: `{"id":1}`}
	if err := s.Observe(ctx, o); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Observation(ctx, "mx.test", "ABC")
	want := o
	want.Time = inboundTime.UTC()
	if err != nil || !ok || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("Observation = %+v %v %v", got, ok, err)
	}
	// A reused queue ID replaces the old observation.
	o.Subject, o.Time = "second", inboundTime.Add(time.Hour)
	if err := s.Observe(ctx, o); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Observation(ctx, "mx.test", "ABC"); got.Subject != "second" {
		t.Errorf("after reuse: %+v", got)
	}
	// The maillog's host field is often the first label of the name the
	// milter recorded: the queue ID decides, the host only breaks ties.
	if got, ok, _ := s.Observation(ctx, "mx", "ABC"); !ok || got.Subject != "second" {
		t.Errorf("by queue ID under the short host name: %+v %v", got, ok)
	}
	other := o
	other.Host, other.Subject = "mx2.test", "on mx2"
	if err := s.Observe(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Observation(ctx, "mx2.test", "ABC"); got.Subject != "on mx2" {
		t.Errorf("the host's own observation is preferred: %+v", got)
	}
	if got, _, _ := s.Observation(ctx, "mx.test", "ABC"); got.Subject != "second" {
		t.Errorf("the host's own observation is preferred: %+v", got)
	}
	if _, ok, _ := s.Observation(ctx, "mx.test", "NONE"); ok {
		t.Error("observation found for an unknown queue ID")
	}
	if err := s.Observe(ctx, event.Observation{Host: "mx.test"}); err == nil {
		t.Error("observation without a queue ID accepted")
	}
	s.Observe(ctx, event.Observation{Host: "mx.test", QueueID: "OLD", Time: inboundTime.Add(-48 * time.Hour)})
	n, err := s.PruneObservations(ctx, inboundTime, 100)
	if err != nil || n != 1 {
		t.Errorf("PruneObservations = %d %v", n, err)
	}
	if _, ok, _ := s.Observation(ctx, "mx.test", "ABC"); !ok {
		t.Error("a recent observation was pruned")
	}
}

// TestExpireInbound: the posts of one filter captured before a time fail
// together, each with its own last reason or the fallback; other filters'
// posts, and later ones, stay; a message loses its content once none of
// its posts is pending.
func TestExpireInbound(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	capture := func(at time.Time, filters ...string) {
		m := testMessage()
		m.Received, m.Attachments = at, nil
		m.Recipients = []event.InboundRecipient{{Address: "orders@shop.example", Filters: filters}}
		if err := s.Capture(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	capture(inboundTime, "a", "b")             // one message, two posts
	capture(inboundTime.Add(time.Minute), "a") // tried once, below
	capture(inboundTime.Add(2*time.Hour), "a") // too young to expire
	due, _ := s.DueInbound(ctx, inboundTime.Add(time.Hour), nil, 10)
	for _, p := range due {
		if p.Filter == "a" && p.Created.Equal(inboundTime.Add(time.Minute)) {
			s.RecordInbound(ctx, InboundAttempt{Post: p.ID, At: p.Created, Attempted: true, State: "deferred",
				Status: 503, Reason: "HTTP 503 Service Unavailable", Next: p.Created.Add(time.Hour)})
		}
	}
	// Skipping a filter leaves its posts out.
	if got, _ := s.DueInbound(ctx, inboundTime.Add(3*time.Hour), []string{"a"}, 10); len(got) != 1 || got[0].Filter != "b" {
		t.Errorf("due without filter a: %+v", got)
	}
	if next, ok, err := s.NextInboundDue(ctx, []string{"b", "x"}); err != nil || !ok || !next.Equal(inboundTime) {
		t.Errorf("next due without filter b: %v %v %v", next, ok, err)
	}
	n, err := s.ExpireInbound(ctx, "a", inboundTime.Add(time.Hour), inboundTime.Add(25*time.Hour), "retry period over", "network: connection refused")
	if err != nil || n != 2 {
		t.Fatalf("ExpireInbound = %d, %v", n, err)
	}
	rows, _ := s.InboundLog(ctx, event.InboundQuery{})
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s %s %s", r.Filter, r.Status, r.Reason))
	}
	want := []string{
		"a failed retry period over: network: connection refused",
		"b queued ",
		"a failed retry period over: HTTP 503 Service Unavailable",
		"a queued ",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("log:\n%q\nwant\n%q", got, want)
	}
	var msgs int
	s.w.QueryRow("SELECT count(*) FROM inbound_messages").Scan(&msgs)
	if msgs != 2 { // the first stays for b's post; the second is gone
		t.Errorf("%d messages left, want 2", msgs)
	}
}
