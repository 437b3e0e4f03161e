package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/posthorn/posthorn/settings"
)

// The settings document of `posthorn settings export|import`: a YAML map
// with an event_webhook: map (the Event Webhook, WIRE.md §4) and an
// inbound: map (the Inbound Webhook). It is read from the user's file
// once, as a tree of nodes, so that every problem is reported at the
// user's own file and line with the field's full name and its allowed
// range, and so that a misspelt key is refused rather than silently left
// at its default.

// settingsDocument is a parsed settings document; a map missing from the
// file is nil and leaves the saved settings of that webhook alone.
type settingsDocument struct {
	EventWebhook *settings.EventWebhook
	Inbound      *settings.Inbound
	// lines maps a field's path ("event_webhook.endpoint",
	// "inbound.filters[1].conditions[0]") to its line in the file.
	lines map[string]int
}

// docProblem is one thing wrong with a settings document.
type docProblem struct {
	Line int    // 0: the document as a whole
	Path string // "event_webhook.interval"; "" for the document
	Msg  string
}

// docProblems are all the problems of a document, in file order.
type docProblems []docProblem

// Format writes one problem a line as FILE:LINE: path: message, the form
// compilers use, which editors can jump to.
func (ps docProblems) Format(file string) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(file)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Msg + "\n")
	}
	return b.String()
}

func (ps docProblems) Error() string { return strings.TrimSuffix(ps.Format("settings"), "\n") }

// The keys of each map, in the order export writes them.
var (
	topKeys = []string{"event_webhook", "inbound"}
	ewKeys  = []string{"endpoint", "bounces", "deliveries", "blocks", "version", "timezone", "json", "basic_user",
		"basic_password", "api_key", "api_key_bearer", "interval", "max_events", "timeout", "retry_period",
		"signing_secret", "ca_file"}
	inboundKeys   = []string{"domains", "log_denied", "filters"}
	filterKeys    = []string{"name", "endpoint", "conditions", "json", "basic_user", "basic_password", "api_key", "api_key_bearer", "signing_secret", "ca_file", "retry_interval", "retry_period", "timeout", "disabled"}
	conditionKeys = []string{"header", "pattern"}
)

// docParser collects the problems of one document.
type docParser struct {
	probs docProblems
	lines map[string]int
	bad   map[string]bool // paths with a problem already: Validate's message on them would repeat it
}

func (p *docParser) add(line int, path, format string, args ...any) {
	p.probs = append(p.probs, docProblem{Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
	p.bad[path] = true
}

// parseSettingsDoc parses and validates a settings document. allowHTTP is
// the daemon config's allow_insecure_http. The document is valid when the
// problems are nil.
func parseSettingsDoc(data []byte, allowHTTP bool) (settingsDocument, docProblems) {
	p := &docParser{lines: map[string]int{}, bad: map[string]bool{}}
	doc := settingsDocument{lines: p.lines}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(0, "", "the document is empty: want a map with event_webhook: and/or inbound:")
		} else {
			p.yamlError(err)
		}
		return doc, p.probs
	}
	var second yaml.Node
	switch err := dec.Decode(&second); {
	case err == nil:
		p.add(second.Line, "", "a second YAML document: a settings file holds one")
	case !errors.Is(err, io.EOF):
		p.yamlError(err)
	}
	if len(root.Content) == 0 {
		p.add(0, "", "the document is empty: want a map with event_webhook: and/or inbound:")
		return doc, p.probs
	}
	top := deref(root.Content[0])
	if top == nil || top.Kind != yaml.MappingNode {
		p.add(top.Line, "", "the document must be a map with event_webhook: and/or inbound:, got %s", kindName(top))
		return doc, p.probs
	}
	p.eachKey(top, "", topKeys, func(key string, line int, v *yaml.Node) {
		switch key {
		case "event_webhook":
			doc.EventWebhook = p.eventWebhook(v)
		case "inbound":
			doc.Inbound = p.inbound(v)
		}
	})
	if doc.EventWebhook == nil && doc.Inbound == nil && len(p.probs) == 0 {
		p.add(top.Line, "", "no event_webhook: or inbound: map in the document")
	}
	if doc.EventWebhook != nil {
		if err := doc.EventWebhook.Validate(allowHTTP); err != nil {
			var fe settings.FieldErrors
			if errors.As(err, &fe) {
				for _, f := range fe.Fields() {
					p.validation("event_webhook."+f, fe[f])
				}
			}
		}
	}
	if doc.Inbound != nil {
		n := doc.Inbound.Normalized()
		doc.Inbound = &n
		if err := n.Validate(allowHTTP); err != nil {
			var ie settings.InboundErrors
			if errors.As(err, &ie) {
				for _, f := range ie.Fields() {
					p.validation("inbound."+f, ie[f])
				}
			}
		}
	}
	if len(p.probs) == 0 {
		return doc, nil
	}
	slices.SortStableFunc(p.probs, func(a, b docProblem) int { return cmp.Compare(a.Line, b.Line) })
	return doc, p.probs
}

// validation reports a Validate message at the line of its field, or of
// the nearest enclosing map or list item for a field the file leaves out.
func (p *docParser) validation(path, msg string) {
	for q := path; q != ""; q = parentPath(q) {
		if p.bad[q] {
			return // the value as written was refused: this follows from it
		}
	}
	line := 0
	for q := path; q != ""; q = parentPath(q) {
		if l, ok := p.lines[q]; ok {
			line = l
			break
		}
	}
	p.add(line, path, "%s", msg)
}

// parentPath drops the last element of a path: "a.b[2]" → "a.b" → "a".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		return path[:strings.LastIndexByte(path, '[')]
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError reports a syntax error of the YAML parser at its line.
func (p *docParser) yamlError(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		p.add(n, "", "not valid YAML: %s", m[2])
		return
	}
	p.add(0, "", "not valid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// deref follows an alias (*name) to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return "a single value"
	}
	return "something else"
}

// eachKey calls fn for each key of the map m in file order, refusing keys
// that are not in known and keys that repeat.
func (p *docParser) eachKey(m *yaml.Node, prefix string, known []string, fn func(key string, line int, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := deref(m.Content[i]), deref(m.Content[i+1])
		path := prefix + k.Value
		switch {
		case k.Kind != yaml.ScalarNode:
			p.add(k.Line, strings.TrimSuffix(prefix, "."), "a key must be a name, got %s", kindName(k))
			continue
		case !slices.Contains(known, k.Value):
			if near := nearest(k.Value, known); near != "" {
				p.add(k.Line, path, "unknown key: did you mean %s?", near)
			} else {
				p.add(k.Line, path, "unknown key: the keys here are %s", strings.Join(known, ", "))
			}
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.add(k.Line, path, "repeats the key of line %d", first)
			continue
		}
		seen[k.Value] = k.Line
		p.lines[path] = k.Line
		fn(k.Value, k.Line, v)
	}
}

// isNull: a key written with no value ("ca_file:") or ~ or null.
func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// text reads a text field. Any single value is taken as written (a number
// is text too: "basic_user: 1234" is the user 1234); nothing is "".
func (p *docParser) text(n *yaml.Node, path string, dst *string) {
	switch {
	case isNull(n):
		*dst = ""
	case n.Kind == yaml.ScalarNode:
		*dst = n.Value
	default:
		p.add(n.Line, path, "must be text, got %s", kindName(n))
	}
}

// secret reads a credential; its value is never quoted back.
func (p *docParser) secret(n *yaml.Node, path string, dst *settings.Secret) {
	var s string
	p.text(n, path, &s)
	*dst = settings.Secret(s)
}

func (p *docParser) boolean(n *yaml.Node, path string, dst *bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		if err := n.Decode(dst); err == nil {
			return
		}
	}
	p.add(n.Line, path, "must be true or false, got %s", shown(n))
}

// integer reads a whole number; want says which ones (with the range) for
// the message when the value is not a number at all.
func (p *docParser) integer(n *yaml.Node, path, want string, dst *int) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		if v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 32); err == nil {
			*dst = int(v)
			return
		}
	}
	p.add(n.Line, path, "must be %s, got %s", want, shown(n))
}

func (p *docParser) duration(n *yaml.Node, path, want string, dst *settings.Duration) {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		if d, err := settings.ParseDuration(strings.TrimSpace(n.Value)); err == nil {
			*dst = d
			return
		}
	}
	p.add(n.Line, path, "must be %s, got %s", want, shown(n))
}

// shown quotes a value that is not a secret for a message.
func shown(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return strconv.Quote(v)
	}
	return kindName(n)
}

// Descriptions of the numeric fields for the messages of values that are
// not numbers at all; Validate's messages give the range of numbers out of
// it.
var (
	wantVersion       = fmt.Sprintf("a whole number from %d to %d", settings.MinVersion, settings.MaxVersion)
	wantInterval      = fmt.Sprintf("a whole number of seconds from %d to %d", settings.MinInterval, settings.MaxInterval)
	wantMaxEvents     = fmt.Sprintf("a whole number from %d to %d", settings.MinMaxEvents, settings.MaxMaxEvents)
	wantTimeout       = fmt.Sprintf("a whole number of seconds from %d to %d", settings.MinTimeout, settings.MaxTimeout)
	wantRetryPeriod   = fmt.Sprintf(`a duration from %s to %s, such as "36h" or "3d"`, settings.Duration(settings.MinRetryPeriod), settings.Duration(settings.MaxRetryPeriod))
	wantRetryInterval = fmt.Sprintf("a whole number of seconds from %d to %d", settings.MinRetryInterval, settings.MaxRetryInterval)
	wantInboundPeriod = fmt.Sprintf(`a duration from %s to %s, such as "36h" or "3d"`, settings.Duration(settings.MinInboundRetryPeriod), settings.Duration(settings.MaxInboundRetryPeriod))
)

// eventWebhook reads the event_webhook: map over the defaults: a key left
// out takes its default.
func (p *docParser) eventWebhook(n *yaml.Node) *settings.EventWebhook {
	s := settings.Default()
	switch {
	case isNull(n):
		// "event_webhook:" alone is the empty map: the defaults, off.
		return &s
	case n.Kind != yaml.MappingNode:
		p.add(n.Line, "event_webhook", "must be a map with the keys %s, got %s", strings.Join(ewKeys, ", "), kindName(n))
		return nil
	}
	p.eachKey(n, "event_webhook.", ewKeys, func(key string, _ int, v *yaml.Node) {
		path := "event_webhook." + key
		switch key {
		case "endpoint":
			p.text(v, path, &s.Endpoint)
		case "bounces":
			p.boolean(v, path, &s.Bounces)
		case "deliveries":
			p.boolean(v, path, &s.Deliveries)
		case "blocks":
			p.boolean(v, path, &s.Blocks)
		case "version":
			p.integer(v, path, wantVersion, &s.Version)
		case "timezone":
			p.text(v, path, &s.Timezone)
		case "json":
			p.boolean(v, path, &s.JSON)
		case "basic_user":
			p.text(v, path, &s.BasicUser)
		case "basic_password":
			p.secret(v, path, &s.BasicPassword)
		case "api_key":
			p.secret(v, path, &s.APIKey)
		case "api_key_bearer":
			p.boolean(v, path, &s.APIKeyBearer)
		case "interval":
			p.integer(v, path, wantInterval, &s.Interval)
		case "max_events":
			p.integer(v, path, wantMaxEvents, &s.MaxEvents)
		case "timeout":
			p.integer(v, path, wantTimeout, &s.Timeout)
		case "retry_period":
			p.duration(v, path, wantRetryPeriod, &s.RetryPeriod)
		case "signing_secret":
			p.secret(v, path, &s.SigningSecret)
		case "ca_file":
			p.text(v, path, &s.CAFile)
		}
	})
	return &s
}

// list returns the items of a list; nothing is the empty list.
func (p *docParser) list(n *yaml.Node, path string) []*yaml.Node {
	switch {
	case isNull(n):
		return nil
	case n.Kind != yaml.SequenceNode:
		p.add(n.Line, path, "must be a list, got %s", kindName(n))
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = deref(c)
		p.lines[fmt.Sprintf("%s[%d]", path, i)] = c.Line
	}
	return out
}

// inbound reads the inbound: map. It replaces the saved inbound settings
// whole; a filter's keys left out take their defaults, as in the console.
func (p *docParser) inbound(n *yaml.Node) *settings.Inbound {
	var s settings.Inbound
	switch {
	case isNull(n):
		return &s
	case n.Kind != yaml.MappingNode:
		p.add(n.Line, "inbound", "must be a map with the keys %s, got %s", strings.Join(inboundKeys, ", "), kindName(n))
		return nil
	}
	p.eachKey(n, "inbound.", inboundKeys, func(key string, _ int, v *yaml.Node) {
		path := "inbound." + key
		switch key {
		case "domains":
			for i, d := range p.list(v, path) {
				var name string
				p.text(d, fmt.Sprintf("%s[%d]", path, i), &name)
				s.Domains = append(s.Domains, name)
			}
		case "log_denied":
			p.boolean(v, path, &s.LogDenied)
		case "filters":
			for i, f := range p.list(v, path) {
				s.Filters = append(s.Filters, p.filter(f, fmt.Sprintf("%s[%d]", path, i)))
			}
		}
	})
	return &s
}

func (p *docParser) filter(n *yaml.Node, path string) settings.InboundFilter {
	f := settings.NewInboundFilter("", "")
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, path, "must be a map with the keys %s, got %s", strings.Join(filterKeys, ", "), kindName(n))
		return f
	}
	p.eachKey(n, path+".", filterKeys, func(key string, _ int, v *yaml.Node) {
		fp := path + "." + key
		switch key {
		case "name":
			p.text(v, fp, &f.Name)
		case "endpoint":
			p.text(v, fp, &f.Endpoint)
		case "conditions":
			for i, c := range p.list(v, fp) {
				f.Conditions = append(f.Conditions, p.condition(c, fmt.Sprintf("%s[%d]", fp, i)))
			}
		case "json":
			p.boolean(v, fp, &f.JSON)
		case "basic_user":
			p.text(v, fp, &f.BasicUser)
		case "basic_password":
			p.secret(v, fp, &f.BasicPassword)
		case "api_key":
			p.secret(v, fp, &f.APIKey)
		case "api_key_bearer":
			p.boolean(v, fp, &f.APIKeyBearer)
		case "signing_secret":
			p.secret(v, fp, &f.SigningSecret)
		case "ca_file":
			p.text(v, fp, &f.CAFile)
		case "retry_interval":
			p.integer(v, fp, wantRetryInterval, &f.RetryInterval)
		case "retry_period":
			p.duration(v, fp, wantInboundPeriod, &f.RetryPeriod)
		case "timeout":
			p.integer(v, fp, wantTimeout, &f.Timeout)
		case "disabled":
			p.boolean(v, fp, &f.Disabled)
		}
	})
	return f
}

func (p *docParser) condition(n *yaml.Node, path string) settings.Condition {
	var c settings.Condition
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, path, "must be a map with the keys header and pattern, got %s", kindName(n))
		return c
	}
	p.eachKey(n, path+".", conditionKeys, func(key string, _ int, v *yaml.Node) {
		switch key {
		case "header":
			p.text(v, path+".header", &c.Header)
		case "pattern":
			p.text(v, path+".pattern", &c.Pattern)
		}
	})
	return c
}

// nearest returns the known key a misspelt one most likely meant: within
// two edits (Levenshtein distance) and nearer than any other, or "".
func nearest(key string, known []string) string {
	best, bestD, tie := "", 3, false
	for _, k := range known {
		switch d := editDistance(strings.ToLower(key), k); {
		case d < bestD:
			best, bestD, tie = k, d, false
		case d == bestD:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
