package blocks

import (
	"regexp"
	"strings"
)

// The plain-text bounces below are not standardised; the patterns follow
// the wording the large providers and qmail have used for years. Each
// pattern yields recipients with a diagnostic; the first pattern that
// yields any wins.

const addrPat = `[A-Za-z0-9!#$%&'*+/=?^_{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+`

var (
	// qmail ("Hi. This is the qmail-send program"), Yahoo ("Sorry, we were
	// unable to deliver your message to the following address.") and
	// Postfix's own text part: a paragraph "<addr>:" followed by the reply.
	angleParaRE = regexp.MustCompile(`(?m)^[ \t]*<(` + addrPat + `)>:[ \t]*(.*)$`)
	// Exchange and Outlook.com: the address on a line of its own, then
	// "Remote Server returned '550 5.1.1 ...'" in the administrators'
	// section. Older Exchange writes "Remote Server returned '< ... #5.1.1>'".
	exchangeRE = regexp.MustCompile(`(?m)^[ \t]*(` + addrPat + `)[ \t]*\r?\n(?:[ \t]*\r?\n)?[ \t]*Remote Server returned '([^'\n]*)'`)
	// Exchange's user part, when the administrators' section is missing:
	// "Delivery has failed to these recipients or groups:" then
	// "Name (addr)" or "addr".
	exchangeUserRE = regexp.MustCompile(`(?i)Delivery has failed to these recipients or groups:\s*(?:[^\n(]*\()?(` + addrPat + `)`)
	// Gmail: "Your message wasn't delivered to addr because ...", then
	// "The response (from the remote server) was:" and the reply.
	gmailRE = regexp.MustCompile(`(?i)(?:wasn't|was not|couldn't be|could not be) delivered to\s+<?(` + addrPat + `)>?`)
	// Older Gmail: "Delivery to the following recipient failed
	// permanently:" and "Technical details of permanent failure:".
	followingRE = regexp.MustCompile(`(?i)(?:following (?:recipients?|address(?:es)?)|recipients? (?:failed|could not be reached))[^\n]*:\s*<?(` + addrPat + `)>?`)

	responseRE  = regexp.MustCompile(`(?i)(?:The response(?: from the remote server)? was|Technical details of permanent failure|Remote server returned)\s*:?\s*\n+\s*([^\n]+)`)
	smtpReplyRE = regexp.MustCompile(`(?m)^[ \t]*#?([45][0-9][0-9][ -:].*)$`)
	basicRE     = regexp.MustCompile(`(?:^|[^0-9.])([45])[0-9][0-9](?:$|[^0-9.])`)
	textIDRE    = regexp.MustCompile(`(?mi)^[ \t]*Message-ID:[ \t]*(<[^<>\s]+>)`)
)

// impliedStatus maps provider wording that carries no enhanced code to
// the code it means, so that the class rules see a code (RFC 3463 §3.2).
var impliedStatus = []struct{ phrase, status string }{
	{"doesn't have a yahoo.com account", "5.1.1"}, // Yahoo: "This user doesn't have a yahoo.com account"
	{"doesn't have a ", "5.1.1"},                  // the same wording for Yahoo's other domains
	{"address couldn't be found", "5.1.1"},        // Gmail, Outlook: no such mailbox
	{"email address you entered couldn't be found", "5.1.1"},
	{"mailbox is full", "5.2.2"},
	{"over quota", "5.2.2"},
}

func parseText(text string) []Recipient {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if rs := exchangeText(text); len(rs) > 0 {
		return rs
	}
	if rs := angleText(text); len(rs) > 0 {
		return rs
	}
	for _, re := range []*regexp.Regexp{gmailRE, exchangeUserRE, followingRE} {
		m := re.FindStringSubmatchIndex(text)
		if m == nil {
			continue
		}
		addr, err := Normalize(text[m[2]:m[3]])
		if err != nil {
			continue
		}
		rest := text[m[1]:]
		return []Recipient{textRecipient(addr, diagnosticAfter(rest, text[m[0]:]))}
	}
	return nil
}

func exchangeText(text string) []Recipient {
	var out []Recipient
	for _, m := range exchangeRE.FindAllStringSubmatch(text, maxRcpts) {
		if addr, err := Normalize(m[1]); err == nil {
			out = append(out, textRecipient(addr, m[2]))
		}
	}
	return out
}

// angleText reads "<addr>:" paragraphs; the diagnostic is the rest of the
// line and the lines up to the next blank line.
func angleText(text string) []Recipient {
	var out []Recipient
	for _, m := range angleParaRE.FindAllStringSubmatchIndex(text, maxRcpts) {
		addr, err := Normalize(text[m[2]:m[3]])
		if err != nil {
			continue
		}
		diag := text[m[4]:m[5]]
		rest := text[m[1]:]
		if i := strings.Index(rest, "\n\n"); i >= 0 {
			rest = rest[:i]
		}
		diag += " " + rest
		out = append(out, textRecipient(addr, diag))
	}
	return out
}

// diagnosticAfter looks for the reply after a recipient: a "The response
// was:" paragraph, else the first line that starts with an SMTP code, else
// the sentence that named the recipient.
func diagnosticAfter(rest, sentence string) string {
	if m := responseRE.FindStringSubmatch(rest); m != nil {
		return m[1]
	}
	if m := smtpReplyRE.FindStringSubmatch(rest); m != nil {
		return m[1]
	}
	if i := strings.IndexAny(rest, ".\n"); i >= 0 {
		return sentence + rest[:i]
	}
	return sentence
}

func textRecipient(addr, diag string) Recipient {
	diag = clip(diag)
	return Recipient{Address: addr, Action: "failed", Status: textStatus(diag), Diagnostic: diag}
}

// textStatus is the enhanced code in a text diagnostic, else the one its
// wording implies, else the class digit of a basic reply code as x.0.0
// (RFC 3463 §3.1), else "".
func textStatus(diag string) string {
	if m := enhancedRE.FindStringSubmatch(diag); m != nil && !strings.HasSuffix(m[1], ".0.0") {
		return m[1]
	}
	lower := strings.ToLower(diag)
	for _, p := range impliedStatus {
		if strings.Contains(lower, p.phrase) {
			return p.status
		}
	}
	if m := enhancedRE.FindStringSubmatch(diag); m != nil {
		return m[1]
	}
	if m := basicRE.FindStringSubmatch(diag); m != nil {
		return m[1] + ".0.0"
	}
	return ""
}

// messageIDInText finds the original Message-ID in a text bounce that
// quotes the returned headers inline.
func messageIDInText(text string) string {
	if m := textIDRE.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	return ""
}
