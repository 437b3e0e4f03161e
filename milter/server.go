package milter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gomilter "github.com/d--j/go-milter"
	"github.com/posthorn/posthorn/event"
)

// Spool is what the milter needs from the store. sqlite.Store satisfies it.
type Spool interface {
	// Capture stores a captured message, its inbound log rows and one
	// queued POST per matching filter in one transaction, and returns nil
	// only once that transaction is durable (fsynced): the milter tells
	// Postfix the message is accepted right after. It reads every
	// attachment's Content.
	Capture(ctx context.Context, m *event.InboundMessage) error
	// LogInbound writes inbound log rows of refused mail.
	LogInbound(ctx context.Context, rows []event.InboundLogEntry) error
	// Observe records what the outbound role saw of one message.
	Observe(ctx context.Context, o event.Observation) error
}

// AfterCapture says what Postfix does with a message once it is captured.
type AfterCapture string

const (
	// Discard: the webhook is the message's destination; Postfix drops
	// it (it logs "milter-discard") and the client sees 250.
	Discard AfterCapture = "discard"
	// Deliver: Postfix also delivers the message as usual.
	Deliver AfterCapture = "deliver"
)

// Options configure a Server.
type Options struct {
	// Host is this mail server's name, written into log rows and captured
	// messages.
	Host string
	// Policy is the inbound policy at start; SetPolicy replaces it.
	Policy *Policy
	// Spool stores what the milter captures and observes.
	Spool Spool
	// AfterCapture: Discard (default) or Deliver.
	AfterCapture AfterCapture
	// MaxMessageSize is the largest message captured, header and body, in
	// bytes; a larger one is refused with 552 5.3.4 (default 64 MiB).
	MaxMessageSize int64
	// MetadataHeader is the header whose value the outbound role records
	// as apiData (default X-Api-Data).
	MetadataHeader string
	// TempDir holds large message bodies and attachments while they are
	// captured ("" is the system's temporary directory).
	TempDir string
	// CaptureTimeout bounds parsing and storing one message (default 60 s,
	// below Postfix's milter_content_timeout of 300 s); past it the
	// message is tempfailed.
	CaptureTimeout time.Duration
	// ReadTimeout closes a milter connection on which Postfix sent nothing
	// for this long, less at most a second (default 1 h; smtpd's own
	// timeouts are far shorter).
	ReadTimeout time.Duration
	// Parse bounds the MIME parser.
	Parse ParseOptions
	// Suppression, when set, is the suppression list the outbound role
	// enforces at RCPT; nil enforces none.
	Suppression Suppression
	// SuppressAction: SuppressReject (default) or SuppressDiscard.
	SuppressAction SuppressAction
	// Bounce configures the inbound role's intake of bounce mail (DSNs,
	// dsn.go); without addresses there is none. Postfix treats a bounce
	// message as AfterCapture says.
	Bounce BounceOptions
	// Log receives one line per decision; nil discards.
	Log *slog.Logger
	// Now is the clock of captured messages and log rows (default time.Now).
	Now func() time.Time
	// Observe, if set, is told of the inbound role's answer at the end of
	// each message (Decision*) and how long that answer took, which is
	// the time Postfix's smtpd waits on the milter after DATA. It must
	// not block; cmd/posthorn feeds its metrics from it.
	Observe func(decision string, took time.Duration)
}

// Decisions passed to Options.Observe.
const (
	DecisionCaptured = "captured" // stored for the Inbound Webhook
	DecisionRefused  = "refused"  // a policy refusal or a message too big: 5xx
	DecisionTempfail = "tempfail" // could not be captured: 4xx, Postfix retries
)

// DefaultMaxMessageSize is Options.MaxMessageSize's default: above
// Postfix's own default message_size_limit (10240000), so Postfix's limit
// applies first unless it is raised.
const DefaultMaxMessageSize = 64 << 20

// Server runs the two milter roles. Each role may listen on several
// listeners; both share the policy and the spool.
type Server struct {
	o       Options
	bounces *BounceAddresses // nil: no bounce intake
	policy  atomic.Pointer[Policy]
	inbound *gomilter.Server
	outbnd  *gomilter.Server
	txns    atomic.Uint64 // outbound transactions begun, for record ids

	mu       sync.Mutex
	open     int           // transactions between MAIL and their end
	idle     chan struct{} // closed when open drops to 0 while stopping
	stopping bool
}

// NewServer checks the options and builds the server; Serve* start it.
func NewServer(o Options) (*Server, error) {
	if o.Spool == nil {
		return nil, errors.New("create milter server: no spool")
	}
	if o.Policy == nil {
		return nil, errors.New("create milter server: no inbound policy")
	}
	switch o.AfterCapture {
	case "":
		o.AfterCapture = Discard
	case Discard, Deliver:
	default:
		return nil, fmt.Errorf("create milter server: after_capture must be %q or %q, got %q", Discard, Deliver, o.AfterCapture)
	}
	switch o.SuppressAction {
	case "":
		o.SuppressAction = SuppressReject
	case SuppressReject, SuppressDiscard:
	default:
		return nil, fmt.Errorf("create milter server: suppressed recipients must be %q or %q, got %q", SuppressReject, SuppressDiscard, o.SuppressAction)
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MetadataHeader == "" {
		o.MetadataHeader = "X-Api-Data"
	}
	if o.CaptureTimeout <= 0 {
		o.CaptureTimeout = 60 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = time.Hour
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Parse.TempDir == "" {
		o.Parse.TempDir = o.TempDir
	}
	bounces, err := NewBounceAddresses(o.Bounce)
	if err != nil {
		return nil, fmt.Errorf("create milter server: %w", err)
	}
	if bounces != nil && o.Bounce.Sink == nil {
		return nil, errors.New("create milter server: bounce addresses without a bounce sink")
	}
	s := &Server{o: o, bounces: bounces}
	s.policy.Store(o.Policy)
	log := o.Log
	// The library reports protocol errors through a package variable.
	gomilter.LogWarning = func(format string, v ...any) {
		log.Warn("milter protocol: " + fmt.Sprintf(format, v...))
	}

	s.inbound = gomilter.NewServer(
		gomilter.WithMilter(func() gomilter.Milter { return &inbound{srv: s} }),
		// Events whose answer is always "continue" are sent without
		// waiting for one: each saved round trip is latency Postfix's
		// client sees (MILTER.md §1.5). RCPT answers per recipient; the
		// end of the headers is decided but answered with the end of the
		// message (Postfix has the whole message by then either way).
		// DATA keeps its answer: without one, Postfix's small writes of
		// DATA, the header fields and the end of the headers meet
		// Nagle's algorithm and delayed ACKs and stall for 40 ms
		// (measured with BenchmarkMilterOverhead).
		gomilter.WithProtocols(gomilter.OptNoHelo|gomilter.OptNoUnknown|gomilter.OptNoConnReply|
			gomilter.OptNoMailReply|gomilter.OptNoHeaderReply|gomilter.OptNoEOHReply|gomilter.OptNoBodyReply),
		// Deleting recipients: a captured message with pass-through
		// recipients is delivered to those only.
		gomilter.WithActions(gomilter.OptRemoveRcpt),
		gomilter.WithMacroRequest(gomilter.StageRcpt, []string{gomilter.MacroQueueId}),
		gomilter.WithMacroRequest(gomilter.StageData, []string{gomilter.MacroQueueId}),
		gomilter.WithMacroRequest(gomilter.StageEOH, []string{gomilter.MacroQueueId}),
		gomilter.WithMacroRequest(gomilter.StageEOM, []string{gomilter.MacroQueueId}),
		// Timeouts are the connections' own (conn.go), not per packet.
		gomilter.WithReadTimeout(0),
		gomilter.WithWriteTimeout(0),
	)
	// The outbound role mostly listens: no body, and no answer before the
	// end of the message, where it accepts. With a suppression list it
	// answers each RCPT (one round trip per recipient) and may take
	// recipients off the message.
	outProto := gomilter.OptNoHelo | gomilter.OptNoUnknown | gomilter.OptNoBody |
		gomilter.OptNoConnReply | gomilter.OptNoMailReply | gomilter.OptNoDataReply |
		gomilter.OptNoHeaderReply | gomilter.OptNoEOHReply
	var outActions gomilter.OptAction
	if o.Suppression == nil {
		outProto |= gomilter.OptNoRcptReply
	} else if o.SuppressAction == SuppressDiscard {
		outActions = gomilter.OptRemoveRcpt
	}
	s.outbnd = gomilter.NewServer(
		gomilter.WithMilter(func() gomilter.Milter { return &outbound{srv: s} }),
		gomilter.WithProtocols(outProto),
		gomilter.WithActions(outActions),
		gomilter.WithMacroRequest(gomilter.StageRcpt, []string{gomilter.MacroQueueId}),
		gomilter.WithMacroRequest(gomilter.StageData, []string{gomilter.MacroQueueId}),
		gomilter.WithMacroRequest(gomilter.StageEOM, []string{gomilter.MacroQueueId}),
		gomilter.WithReadTimeout(0),
		gomilter.WithWriteTimeout(0),
	)
	return s, nil
}

// SetPolicy replaces the inbound policy; transactions already past MAIL
// keep the one they started with.
func (s *Server) SetPolicy(p *Policy) {
	if p != nil {
		s.policy.Store(p)
	}
}

// ServeInbound answers the inbound role on ln until Shutdown. It returns
// nil after Shutdown.
func (s *Server) ServeInbound(ln net.Listener) error { return s.serve(s.inbound, ln) }

// ServeOutbound answers the outbound role on ln until Shutdown.
func (s *Server) ServeOutbound(ln net.Listener) error { return s.serve(s.outbnd, ln) }

func (s *Server) serve(srv *gomilter.Server, ln net.Listener) error {
	err := srv.Serve(connListener{Listener: ln, readIdle: s.o.ReadTimeout, writeTimeout: writeTimeout})
	if errors.Is(err, gomilter.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops taking connections, refuses new transactions (421, so
// Postfix's client retries later), waits until every open transaction has
// ended — above all, until every captured message is stored and answered —
// and then closes the remaining idle connections; Postfix answers their
// next command with its milter_default_action (tempfail). When ctx ends
// first, the connections are closed at once: an unanswered message is then
// tempfailed by Postfix, never half accepted.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	if s.idle == nil {
		s.idle = make(chan struct{})
		if s.open == 0 {
			close(s.idle)
		}
	}
	idle := s.idle
	s.mu.Unlock()

	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-idle:
		case <-ctx.Done():
		}
		cancel() // closes the sessions still connected
	}()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, srv := range []*gomilter.Server{s.inbound, s.outbnd} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(inner); err != nil && !errors.Is(err, context.Canceled) {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stop milter: %w", err)
	}
	return errors.Join(errs...)
}

// begin counts a transaction in; it reports false while stopping.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.open++
	return true
}

// end counts a transaction out.
func (s *Server) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if s.open == 0 && s.idle != nil {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
}

// replyShuttingDown closes the client's session: RFC 5321 §3.8, 421 when the
// service is going down; RFC 3463 4.3.2 "system not accepting network
// messages".
var replyShuttingDown = Reply{421, "4.3.2 Service shutting down, try again later"}

func respond(r Reply) *gomilter.Response {
	resp, err := gomilter.RejectWithCodeAndReason(uint16(r.Code), r.Text)
	if err != nil {
		// Only a code outside 400–599 fails, and every Reply is built
		// here: a plain tempfail is still a safe answer.
		return gomilter.RespTempFail
	}
	return resp
}
