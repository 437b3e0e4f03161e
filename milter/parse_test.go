package milter

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

const (
	jaSubject = "ご注文ありがとうございます"
	jaBody    = "こんにちは、世界。\n請求書を添付します。\n"
	jaHTML    = "<p>こんにちは、<b>世界</b>。</p>\n"
	jaFile1   = "請求書.pdf"
	jaFile2   = "見積書 (2025).xlsx"
)

// pdfBytes and xlsxBytes are binary attachment contents with every byte
// value, so a transfer-encoding mistake shows.
var (
	pdfBytes  = append([]byte("%PDF-1.4\n"), allBytes(3)...)
	xlsxBytes = append([]byte("PK\x03\x04"), allBytes(5)...)
)

func allBytes(rounds int) []byte {
	var b []byte
	for r := 0; r < rounds; r++ {
		for i := 0; i < 256; i++ {
			b = append(b, byte(i))
		}
	}
	return b
}

// parseCase is one message of the corpus and the golden file its parse is
// compared with.
type parseCase struct {
	name string
	raw  func(t testing.TB) string
}

func wellFormed() []parseCase {
	return []parseCase{
		{"plain-ascii", func(testing.TB) string {
			return crlf("From: Alice <alice@example.org>\nTo: orders@shop.example\nSubject: hello\nMessage-Id: <1@example.org>\n\nplain body\n")
		}},
		{"iso-2022-jp-multipart", func(t testing.TB) string {
			return crlf("From: "+bword(t, "ISO-2022-JP", iso2022jp, "山田太郎")+" <taro@example.jp>\n"+
				"To: orders@shop.example\n"+
				"Subject: "+bword(t, "ISO-2022-JP", iso2022jp, jaSubject)+"\n"+
				"Message-Id: <jis@example.jp>\n"+
				"MIME-Version: 1.0\n"+
				"Content-Type: multipart/mixed; boundary=\"b1\"\n\n"+
				"This is a multi-part message in MIME format.\n"+
				"--b1\n"+
				"Content-Type: text/plain; charset=ISO-2022-JP\n"+
				"Content-Transfer-Encoding: 7bit\n\n"+
				encode(t, iso2022jp, jaBody)+"\n"+
				"--b1\n"+
				"Content-Type: application/pdf\n"+
				"Content-Disposition: attachment; filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf\n"+
				"Content-Transfer-Encoding: base64\n\n") +
				b64(pdfBytes) +
				crlf("--b1\n"+
					"Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet; name=\""+bword(t, "ISO-2022-JP", iso2022jp, jaFile2)+"\"\n"+
					"Content-Disposition: attachment;\n filename=\""+bword(t, "ISO-2022-JP", iso2022jp, jaFile2)+"\"\n"+
					"Content-Transfer-Encoding: base64\n\n") +
				b64(xlsxBytes) + crlf("--b1--\n")
		}},
		{"shift-jis-alternative", func(t testing.TB) string {
			return crlf("From: shop@example.jp\n" +
				"To: support@shop.example\n" +
				"Subject: " + bword(t, "Shift_JIS", shiftJIS, jaSubject) + "\n" +
				"MIME-Version: 1.0\n" +
				"Content-Type: multipart/alternative; boundary=alt\n\n" +
				"--alt\n" +
				"Content-Type: text/plain; charset=Shift_JIS\n" +
				"Content-Transfer-Encoding: base64\n\n" +
				b64([]byte(encode(t, shiftJIS, jaBody))) +
				"--alt\n" +
				"Content-Type: text/html; charset=\"shift_jis\"\n" +
				"Content-Transfer-Encoding: quoted-printable\n\n" +
				qp(encode(t, shiftJIS, jaHTML)) + "\n" +
				"--alt--\n")
		}},
		{"euc-jp-quoted-printable", func(t testing.TB) string {
			return crlf("From: a@example.jp\nTo: b@shop.example\n" +
				"Subject: =?EUC-JP?Q?" + qword(encode(t, eucJP, "見積")) + "?= request\n" +
				"Content-Type: text/plain; charset=euc-jp\nContent-Transfer-Encoding: quoted-printable\n\n" +
				qp(encode(t, eucJP, jaBody)) + "\n")
		}},
		{"utf8-raw-headers", func(testing.TB) string {
			// RFC 6532: UTF-8 in header fields without encoded words.
			return crlf("From: 山田 <yamada@example.jp>\nTo: b@shop.example\nSubject: 日本語の件名\n" +
				"Content-Type: text/html; charset=utf-8\n\n<p>本文</p>\n")
		}},
		{"iso-2022-jp-raw-header", func(t testing.TB) string {
			// Old Japanese mailers: JIS escapes in a header, no encoded word.
			return crlf("From: a@example.jp\nTo: b@shop.example\nSubject: " + encode(t, iso2022jp, jaSubject) +
				"\nContent-Type: text/plain; charset=iso-2022-jp\n\n" + encode(t, iso2022jp, jaBody))
		}},
		{"folded-and-duplicate-headers", func(testing.TB) string {
			return crlf("Received: from a by b;\n\tMon, 1 Jan 2025 00:00:00 +0000\nReceived: from c by d\n" +
				"From: a@example.org\nTo: x@shop.example,\n  y@shop.example\n" +
				"Subject: =?UTF-8?Q?caf=C3=A9?= =?UTF-8?Q?_au_lait?=\n  and more\nX-Empty:\n\nbody\n")
		}},
		{"inline-text-attachment-and-rfc822", func(testing.TB) string {
			return crlf("From: a@example.org\nTo: x@shop.example\nSubject: fwd\n" +
				"Content-Type: multipart/mixed; boundary=m\n\n" +
				"--m\nContent-Type: text/plain\n\nfirst\n" +
				"--m\nContent-Type: text/plain; name=notes.txt\nContent-Disposition: inline; filename=notes.txt\n\nnotes\n" +
				"--m\nContent-Type: text/plain\n\nfooter\n" +
				"--m\nContent-Type: message/rfc822\n\nFrom: b@example.org\nSubject: inner\n\ninner body\n" +
				"--m\nContent-Type: image/png\nContent-Disposition: attachment; filename=\"=?UTF-8?B?5YaZ55yf?=.png\"\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n" +
				"--m--\n")
		}},
	}
}

// malformed is the corpus of broken messages (issue 4, "Tests"): each must
// parse without a panic or an error, keeping what can be read.
func malformed() []parseCase {
	return []parseCase{
		{"truncated-multipart", func(testing.TB) string {
			return crlf("From: a@example.org\nTo: x@shop.example\nContent-Type: multipart/mixed; boundary=t\n\n" +
				"--t\nContent-Type: text/plain\n\nkept text\n--t\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK")
		}},
		{"bad-base64", func(testing.TB) string {
			return crlf("From: a@example.org\nTo: x@shop.example\nContent-Type: multipart/mixed; boundary=t\n\n" +
				"--t\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVsbG8gd29ybGQ=!!!*not base64*\n" +
				"--t\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=x.bin\nContent-Transfer-Encoding: base64\n\nAAEC$$$\n--t--\n")
		}},
		{"8bit-raw-headers", func(t testing.TB) string {
			// Shift_JIS bytes in headers and body, no charset anywhere.
			return "From: " + encode(t, shiftJIS, "山田") + " <a@example.jp>\r\nTo: x@shop.example\r\nSubject: " +
				encode(t, shiftJIS, jaSubject) + "\r\n\r\n" + encode(t, shiftJIS, jaBody)
		}},
		{"8bit-raw-headers-with-charset", func(t testing.TB) string {
			// The same, with the body's charset as the hint for the headers.
			return "From: a@example.jp\r\nTo: x@shop.example\r\nSubject: " + encode(t, shiftJIS, jaSubject) +
				"\r\nContent-Type: text/plain; charset=Shift_JIS\r\n\r\n" + encode(t, shiftJIS, jaBody)
		}},
		{"nested-1000", func(testing.TB) string {
			var b strings.Builder
			b.WriteString("From: a@example.org\r\nTo: x@shop.example\r\nContent-Type: multipart/mixed; boundary=n0\r\n\r\n")
			for i := 0; i < 1000; i++ {
				fmt.Fprintf(&b, "--n%d\r\nContent-Type: multipart/mixed; boundary=n%d\r\n\r\n", i, i+1)
			}
			b.WriteString("--n1000\r\nContent-Type: text/plain\r\n\r\ndeep\r\n--n1000--\r\n")
			for i := 999; i >= 0; i-- {
				fmt.Fprintf(&b, "--n%d--\r\n", i)
			}
			return b.String()
		}},
		{"many-parts", func(testing.TB) string {
			var b strings.Builder
			b.WriteString("From: a@example.org\r\nTo: x@shop.example\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n")
			for i := 0; i < 1200; i++ {
				fmt.Fprintf(&b, "--p\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=f%d\r\n\r\n%d\r\n", i, i)
			}
			b.WriteString("--p--\r\n")
			return b.String()
		}},
		{"long-lines", func(testing.TB) string {
			long := strings.Repeat("x", 10000)
			return "From: a@example.org\r\nTo: x@shop.example\r\nSubject: " + long + "\r\nContent-Type: multipart/mixed; boundary=l\r\n\r\n" +
				long + "\r\n--l\r\nContent-Type: text/plain\r\n\r\n" + long + "\r\n--l--\r\n"
		}},
		{"nul-bytes", func(testing.TB) string {
			return "From: a@example.org\r\nTo: x@shop.example\r\nSubject: a\x00b\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n" +
				"--z\r\nContent-Type: text/plain\r\n\r\nbefore\x00after\r\n--z\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"n\x00l\"\r\n\r\n\x00\x00\x00\r\n--z--\r\n"
		}},
		{"no-boundary", func(testing.TB) string {
			return crlf("From: a@example.org\nTo: x@shop.example\nContent-Type: multipart/mixed\n\n--x\nContent-Type: text/plain\n\nlost\n--x--\n")
		}},
		{"unknown-charset-and-encoding", func(testing.TB) string {
			return crlf("From: a@example.org\nTo: x@shop.example\nSubject: =?x-klingon?Q?tlhIngan?=\nContent-Type: multipart/mixed; boundary=u\n\n" +
				"--u\nContent-Type: text/plain; charset=x-klingon\n\nqapla\n" +
				"--u\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: x-uuencode\nContent-Disposition: attachment; filename=u.bin\n\nbegin 644 u\n--u--\n")
		}},
		{"garbage-content-type", func(testing.TB) string {
			return crlf("From: a@example.org\nTo: x@shop.example\nContent-Type: ;;;===\nContent-Disposition: attachment; filename=\"bad name.txt\"; ;\n\ndata\n")
		}},
		{"empty-body", func(testing.TB) string {
			return "From: a@example.org\r\nTo: x@shop.example\r\n\r\n"
		}},
	}
}

// qp is a minimal quoted-printable encoder for test input.
func qp(s string) string {
	var b strings.Builder
	col := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n':
			b.WriteString("\n")
			col = 0
			continue
		case c >= 33 && c <= 126 && c != '=':
			b.WriteByte(c)
			col++
		default:
			fmt.Fprintf(&b, "=%02X", c)
			col += 3
		}
		if col >= 72 {
			b.WriteString("=\n")
			col = 0
		}
	}
	return b.String()
}

// qword encodes bytes for an RFC 2047 Q-encoded word.
func qword(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "=%02X", s[i])
	}
	return b.String()
}

// summary is what the golden files hold: everything Parse returns, with
// attachment contents as size and hash.
type summary struct {
	Headers     []map[string]string `json:"headers"`
	From        string              `json:"from"`
	Subject     string              `json:"subject"`
	MessageID   string              `json:"messageId"`
	Text        string              `json:"text"`
	HTML        string              `json:"html"`
	Attachments []attachmentSummary `json:"attachments"`
	Problems    []string            `json:"problems"`
}

type attachmentSummary struct {
	Filename    string `json:"filename"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

func summarize(t *testing.T, p *Parsed) []byte {
	t.Helper()
	s := summary{From: p.From, Subject: p.Subject, MessageID: p.MessageID, Text: p.Text, HTML: p.HTML, Problems: p.Problems}
	for _, h := range p.Headers {
		s.Headers = append(s.Headers, map[string]string{h.Name: h.Value})
	}
	for _, a := range p.Attachments {
		h := sha256.New()
		n, err := io.Copy(h, a.Content)
		if err != nil {
			t.Fatal(err)
		}
		if n != a.Size {
			t.Errorf("attachment %q: Size %d, content %d bytes", a.Filename, a.Size, n)
		}
		s.Attachments = append(s.Attachments, attachmentSummary{a.Filename, a.ContentType, a.Size, hex.EncodeToString(h.Sum(nil))[:16]})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParseGolden(t *testing.T) {
	for _, set := range []struct {
		dir   string
		cases []parseCase
	}{{"wellformed", wellFormed()}, {"malformed", malformed()}} {
		for _, c := range set.cases {
			t.Run(set.dir+"/"+c.name, func(t *testing.T) {
				fields, body := splitMessage([]byte(c.raw(t)))
				p, err := Parse(fields, bytes.NewReader(body), ParseOptions{TempDir: t.TempDir(), MemLimit: 1024})
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				defer p.Close()
				golden(t, "parse/"+set.dir+"/"+c.name+".json", summarize(t, p))
			})
		}
	}
}

// TestParseJapanese checks the decoded Japanese text directly, so the
// golden files cannot have been rewritten into agreeing with a bug.
func TestParseJapanese(t *testing.T) {
	for _, c := range wellFormed()[1:3] {
		fields, body := splitMessage([]byte(c.raw(t)))
		p, err := Parse(fields, bytes.NewReader(body), ParseOptions{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if p.Subject != jaSubject {
			t.Errorf("%s: Subject = %q, want %q", c.name, p.Subject, jaSubject)
		}
		if p.Text != jaBody {
			t.Errorf("%s: Text = %q, want %q", c.name, p.Text, jaBody)
		}
		if c.name == "iso-2022-jp-multipart" {
			if len(p.Attachments) != 2 || p.Attachments[0].Filename != jaFile1 || p.Attachments[1].Filename != jaFile2 {
				t.Fatalf("attachments = %+v", p.Attachments)
			}
			got, _ := io.ReadAll(p.Attachments[0].Content)
			if !bytes.Equal(got, pdfBytes) {
				t.Error("PDF attachment bytes differ")
			}
			if p.From != "山田太郎 <taro@example.jp>" {
				t.Errorf("From = %q", p.From)
			}
		}
		if c.name == "shift-jis-alternative" && p.HTML != jaHTML {
			t.Errorf("HTML = %q, want %q", p.HTML, jaHTML)
		}
		p.Close()
	}
}

func TestLineBreaker(t *testing.T) {
	long := strings.Repeat("é", 3000) // 6000 bytes of two-byte sequences
	in := "short\r\n" + long + "\r\n" + strings.Repeat("a", 4000) + "\r\n" + strings.Repeat("b", 9001) + "\nend"
	for _, chunk := range []int{1, 7, 4000, 1 << 20} {
		r := newLineBreaker(&chunkReader{s: in, n: chunk}, 4000)
		out, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(out), "\n") {
			if n := len(strings.TrimSuffix(line, "\r")); n > 4000 {
				t.Errorf("chunk %d: line %d has %d bytes", chunk, i, n)
			}
			if !utf8Valid(line) {
				t.Errorf("chunk %d: line %d was cut inside a UTF-8 sequence", chunk, i)
			}
		}
		// Removing the inserted breaks gives the input back: the lines
		// that needed no break are untouched.
		lines := strings.Split(string(out), "\r\n")
		if got := strings.Join(lines, ""); got != strings.ReplaceAll(in, "\r\n", "") {
			t.Errorf("chunk %d: content changed beyond the inserted breaks", chunk)
		}
		if !strings.HasPrefix(string(out), "short\r\n") || !strings.Contains(string(out), "\r\n"+strings.Repeat("a", 4000)+"\r\n") {
			t.Errorf("chunk %d: a line of 4000 bytes or less was broken", chunk)
		}
	}
}

type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[n:]
	return n, nil
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestToUTF8(t *testing.T) {
	for _, c := range []struct {
		name, in, hint, want string
	}{
		{"utf-8 as is", "Grüße 日本", "", "Grüße 日本"},
		{"latin-1 guessed as windows-1252", "Gr\xfc\xdfe, caf\xe9", "", "Grüße, café"},
		{"shift_jis guessed", encode(t, shiftJIS, "請求書"), "", "請求書"},
		{"euc-jp guessed", encode(t, eucJP, "見積書です"), "", "見積書です"},
		{"hint wins over the guess", encode(t, eucJP, "見積"), "euc-jp", "見積"},
		{"iso-2022-jp escapes", encode(t, iso2022jp, "請求書"), "", "請求書"},
		{"unknown hint falls through", "caf\xe9", "x-unknown", "café"},
	} {
		if got := toUTF8(c.in, c.hint); got != c.want {
			t.Errorf("%s: toUTF8 = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestParseLargeAttachment: a 40 MB attachment (54 MB of base64) is read
// through without being held in memory, and its bytes come out intact.
func TestParseLargeAttachment(t *testing.T) {
	const size = 40 << 20
	head := crlf("From: a@example.org\nTo: x@shop.example\nSubject: big\nContent-Type: multipart/mixed; boundary=big\n\n" +
		"--big\nContent-Type: text/plain\n\nsee attachment\n--big\nContent-Type: application/octet-stream\n" +
		"Content-Disposition: attachment; filename=big.bin\nContent-Transfer-Encoding: base64\n\n")
	fields, preamble := splitMessage([]byte(head))
	body := io.MultiReader(bytes.NewReader(preamble), newBase64Source(size), strings.NewReader("\r\n--big--\r\n"))

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	p, err := Parse(fields, body, ParseOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
		t.Errorf("heap grew by %d MB while parsing: the attachment is held in memory", grew>>20)
	}
	if len(p.Attachments) != 1 || p.Attachments[0].Size != size || p.Text != "see attachment" {
		t.Fatalf("parsed %+v, text %q, problems %q", p.Attachments, p.Text, p.Problems)
	}
	h := sha256.New()
	if _, err := io.Copy(h, p.Attachments[0].Content); err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), patternSHA256(size); got != want {
		t.Errorf("attachment hash %s, want %s", got, want)
	}
}

// patternByte is the content of the large attachment: position-dependent,
// so a lost or repeated chunk shows in the hash.
func patternByte(i int64) byte { return byte(i*7 + i>>16) }

func patternSHA256(size int64) string {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		for i := int64(0); i < n; i++ {
			buf[i] = patternByte(off + i)
		}
		h.Write(buf[:n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// base64Source streams the base64 of size pattern bytes in 76-column
// lines, without building it in memory.
type base64Source struct {
	size, off int64
	pending   []byte
}

func newBase64Source(size int64) *base64Source { return &base64Source{size: size} }

func (b *base64Source) Read(p []byte) (int, error) {
	if len(b.pending) == 0 {
		if b.off >= b.size {
			return 0, io.EOF
		}
		raw := make([]byte, min(57*1000, b.size-b.off)) // 57 bytes make one 76-column line
		for i := range raw {
			raw[i] = patternByte(b.off + int64(i))
		}
		b.off += int64(len(raw))
		b.pending = []byte(b64(raw))
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}
