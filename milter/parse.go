package milter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"sync"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode every charset x/text knows, ISO-2022-JP and Shift_JIS included
	"github.com/posthorn/posthorn/event"
)

// ParseOptions bound the work and memory of Parse. Zero fields take the
// defaults shown.
type ParseOptions struct {
	// TempDir holds the files of attachments larger than MemLimit; ""
	// means the system's temporary directory.
	TempDir string
	// MemLimit is how much of one attachment is kept in memory before it
	// moves to a file (256 KiB).
	MemLimit int
	// MaxDepth is the deepest multipart nesting read (20); deeper parts
	// are skipped and reported as a problem. Mail clients nest three or
	// four levels; anything deeper is built to exhaust parsers.
	MaxDepth int
	// MaxParts is the most MIME parts read (1000).
	MaxParts int
	// MaxAttachments is the most attachments kept (250).
	MaxAttachments int
}

func (o ParseOptions) withDefaults() ParseOptions {
	if o.MemLimit <= 0 {
		o.MemLimit = 256 << 10
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 20
	}
	if o.MaxParts <= 0 {
		o.MaxParts = 1000
	}
	if o.MaxAttachments <= 0 {
		o.MaxAttachments = 250
	}
	return o
}

// maxProblems bounds the problems kept per message: a message built to
// fail everywhere must not make its report large.
const maxProblems = 20

// Parsed is a message as WIRE.md §3 posts it. Attachment contents live in
// memory or temporary files until Close.
type Parsed struct {
	Headers     []event.Header
	From        string
	Subject     string
	MessageID   string
	Text        string
	HTML        string
	Attachments []event.Attachment
	Problems    []string

	spills []*spill
}

// Close releases the attachment contents.
func (p *Parsed) Close() {
	for _, s := range p.spills {
		s.Close()
	}
	p.spills = nil
}

func (p *Parsed) problem(format string, args ...any) {
	if len(p.Problems) < maxProblems {
		p.Problems = append(p.Problems, fmt.Sprintf(format, args...))
	}
}

// errSpill marks a failure to keep an attachment (disk full, temporary
// directory gone): the message cannot be captured whole, so the milter
// answers with a temporary failure.
type errSpill struct{ err error }

func (e errSpill) Error() string { return e.err.Error() }
func (e errSpill) Unwrap() error { return e.err }

// Parse reads a message from its header fields, as the milter received them,
// and its body (RFC 5322 with MIME, RFC 2045–2047, 2183, 2231). It never
// fails on the content: whatever is malformed is skipped, noted in
// Problems, and the rest is kept. Its error reports only a failure to store
// an attachment's bytes. The caller closes the result.
func Parse(fields []Field, body io.Reader, o ParseOptions) (*Parsed, error) {
	o = o.withDefaults()
	p := &Parsed{}
	hint := ""
	for _, f := range fields {
		if strings.EqualFold(f.Name, "Content-Type") {
			if _, params, err := mime.ParseMediaType(unfold(f.Raw)); err == nil {
				hint = params["charset"]
			}
			break
		}
	}
	var h message.Header
	for _, f := range fields {
		v := decodeValue(f.Raw, hint)
		p.Headers = append(p.Headers, event.Header{Name: f.Name, Value: v})
		switch {
		case p.From == "" && strings.EqualFold(f.Name, "From"):
			p.From = v
		case p.Subject == "" && strings.EqualFold(f.Name, "Subject"):
			p.Subject = v
		case p.MessageID == "" && strings.EqualFold(f.Name, "Message-Id"):
			p.MessageID = strings.ToValidUTF8(unfold(f.Raw), "\uFFFD")
		}
		h.Add(f.Name, unfold(f.Raw))
	}
	w := walker{p: p, o: o, hint: hint}
	lb := newLineBreaker(body, maxLine)
	defer lb.release()
	e, err := message.New(h, lb)
	if err != nil {
		p.problem("message: %v", err)
	}
	if err := w.walk(e, 0, "message"); err != nil {
		p.Close()
		return nil, err
	}
	p.Text, p.HTML = toLF(p.Text), toLF(p.HTML)
	return p, nil
}

type walker struct {
	p     *Parsed
	o     ParseOptions
	hint  string
	parts int
}

// walk reads one entity: a multipart's parts in turn, or a leaf. Only an
// errSpill stops it.
func (w *walker) walk(e *message.Entity, depth int, where string) error {
	if mr := e.MultipartReader(); mr != nil {
		if depth >= w.o.MaxDepth {
			w.p.problem("%s: multipart nested deeper than %d levels not read", where, w.o.MaxDepth)
			return nil
		}
		for i := 1; ; i++ {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			name := fmt.Sprintf("%s.%d", where, i)
			if depth == 0 {
				name = fmt.Sprintf("part %d", i)
			}
			if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
				w.p.problem("%s: %v", name, err)
				return nil
			}
			if err != nil {
				w.p.problem("%s: %v", name, err)
			}
			if w.parts >= w.o.MaxParts {
				w.p.problem("%s: more than %d parts, the rest not read", name, w.o.MaxParts)
				return nil
			}
			w.parts++
			if err := w.walk(part, depth+1, name); err != nil {
				return err
			}
		}
	}
	return w.leaf(e, where)
}

func (w *walker) leaf(e *message.Entity, where string) error {
	mt, params, err := e.Header.ContentType()
	if err != nil {
		mt, params = "application/octet-stream", nil
		w.p.problem("%s: Content-Type: %v", where, err)
	}
	mt = strings.ToLower(mt)
	disp, dparams, _ := e.Header.ContentDisposition()
	hint := params["charset"]
	if hint == "" {
		hint = w.hint
	}
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	if filename == "" {
		// mime.ParseMediaType refuses the whole field for one bad
		// parameter; mailers write such fields, so look for the name.
		filename = rawParam(e.Header.Get("Content-Disposition"), "filename")
		if filename == "" {
			filename = rawParam(e.Header.Get("Content-Type"), "name")
		}
	}
	filename = decodeValue(filename, hint)

	isBody := (mt == "text/plain" || mt == "text/html") && !strings.EqualFold(disp, "attachment") && filename == ""
	if isBody {
		var b strings.Builder
		if _, err := io.Copy(&b, e.Body); err != nil {
			w.p.problem("%s: %s body: %v", where, mt, err)
		}
		text := b.String()
		switch cs := strings.ToLower(params["charset"]); cs {
		case "", "us-ascii", "utf-8":
			// Undeclared, or declared as what 8-bit text often is not.
			text = toUTF8(text, w.hint)
		default:
			text = strings.ToValidUTF8(text, "\uFFFD")
		}
		dst := &w.p.Text
		if mt == "text/html" {
			dst = &w.p.HTML
		}
		if *dst != "" && text != "" {
			// A second inline body part (a list footer, a forwarded
			// text): keep it, after the first.
			*dst += "\n"
		}
		*dst += text
		return nil
	}

	if len(w.p.Attachments) >= w.o.MaxAttachments {
		w.p.problem("%s: more than %d attachments, %q not kept", where, w.o.MaxAttachments, filename)
		_, _ = io.Copy(io.Discard, e.Body)
		return nil
	}
	s := newSpill(w.o.TempDir, w.o.MemLimit)
	w.p.spills = append(w.p.spills, s)
	if _, err := io.Copy(spillWriter{s}, e.Body); err != nil {
		var se errSpill
		if errors.As(err, &se) {
			return err
		}
		w.p.problem("%s: attachment %q: %v", where, filename, err)
	}
	w.p.Attachments = append(w.p.Attachments, event.Attachment{
		Filename:    filename,
		ContentType: mt,
		Size:        s.Len(),
		Content:     s.Reader(),
	})
	return nil
}

// spillWriter tags the spill's own errors, so that a read error of the
// part (bad base64) is told apart from a write error of the file.
type spillWriter struct{ s *spill }

func (sw spillWriter) Write(p []byte) (int, error) {
	n, err := sw.s.Write(p)
	if err != nil {
		return n, errSpill{err}
	}
	return n, nil
}

// rawParam finds name="value" or name=value in a header field that
// mime.ParseMediaType refused.
func rawParam(field, name string) string {
	lower := strings.ToLower(field)
	for i := 0; ; {
		j := strings.Index(lower[i:], name+"=")
		if j < 0 {
			return ""
		}
		j += i
		if j > 0 && !strings.ContainsRune("; \t", rune(lower[j-1])) {
			i = j + len(name) + 1
			continue
		}
		v := field[j+len(name)+1:]
		if strings.HasPrefix(v, `"`) {
			if end := strings.IndexByte(v[1:], '"'); end >= 0 {
				return v[1 : end+1]
			}
			return v[1:]
		}
		if end := strings.IndexAny(v, "; \t"); end >= 0 {
			return v[:end]
		}
		return v
	}
}

// maxLine is the longest line Parse reads as it is. RFC 5322 §2.1.1 allows
// 998 bytes; the multipart reader cannot look past 4096 bytes for a
// boundary, and a longer line in a preamble makes it give up on the whole
// multipart. So longer lines are broken (with CRLF, never inside a UTF-8
// sequence): base64 ignores the break, text gains a line break where the
// sender broke the standard.
const maxLine = 4000

// lineBreaker inserts CRLF into lines longer than max bytes.
type lineBreaker struct {
	r       io.Reader
	max     int
	col     int // bytes of the current line passed on so far
	buf     []byte
	out     []byte
	pending []byte
	err     error
}

// lineBuffers keeps lineBreaker buffers between messages: allocating and
// zeroing them for every message showed in the milter's latency.
var lineBuffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

func newLineBreaker(r io.Reader, max int) *lineBreaker {
	return &lineBreaker{r: r, max: max, buf: lineBuffers.Get().(*[32 << 10]byte)[:]}
}

// release returns the buffer; the lineBreaker is not used afterwards.
func (l *lineBreaker) release() {
	if cap(l.buf) == 32<<10 {
		lineBuffers.Put((*[32 << 10]byte)(l.buf[:32<<10]))
	}
	l.buf, l.out, l.pending = nil, nil, nil
}

func (l *lineBreaker) Read(p []byte) (int, error) {
	for len(l.pending) == 0 {
		if l.err != nil {
			return 0, l.err
		}
		n, err := l.r.Read(l.buf)
		l.err = err
		l.pending = l.breakLines(l.buf[:n])
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}

func (l *lineBreaker) breakLines(in []byte) []byte {
	out := l.out[:0]
	for len(in) > 0 {
		seg, rest, eol := in, []byte(nil), false
		if i := bytes.IndexByte(in, '\n'); i >= 0 {
			seg, rest, eol = in[:i+1], in[i+1:], true
		}
		content := seg
		if eol {
			content = bytes.TrimSuffix(bytes.TrimSuffix(seg, []byte("\n")), []byte("\r"))
		}
		for l.col+len(content) > l.max {
			take := l.max - l.col
			// Back off to the start of a UTF-8 sequence (continuation
			// bytes are 10xxxxxx), at most three bytes.
			for k := 0; k < 3 && take > 0 && content[take]&0xC0 == 0x80; k++ {
				take--
			}
			out = append(out, content[:take]...)
			out = append(out, '\r', '\n')
			content, seg = content[take:], seg[take:]
			l.col = 0
		}
		out = append(out, seg...)
		if eol {
			l.col = 0
		} else {
			l.col += len(seg)
		}
		in = rest
	}
	l.out = out
	return out
}

// toLF turns CRLF line ends into LF (WIRE.md §1: payloads use LF; mail has
// CRLF). A run of CRs before an LF goes with it: a bare CR is not allowed
// in mail (RFC 5322 §2.3), and keeping it would leave a CRLF behind.
func toLF(s string) string {
	if !strings.Contains(s, "\r\n") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.Index(s, "\r\n")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i
		for j > 0 && s[j-1] == '\r' {
			j--
		}
		b.WriteString(s[:j])
		b.WriteByte('\n')
		s = s[i+2:]
	}
}
