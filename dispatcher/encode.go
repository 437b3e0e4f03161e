package dispatcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// Content types of WIRE.md §2. Neither carries a charset parameter: JSON is
// UTF-8 by definition (RFC 8259 §8.1), and the hosted service sends forms
// without one.
const (
	ContentTypeForm = "application/x-www-form-urlencoded"
	ContentTypeJSON = "application/json"
)

// createdLayout is WIRE.md's `created`: no zone designator, in the webhook's
// configured zone.
const createdLayout = "2006-01-02 15:04:05"

// Encode builds the body of one Event Webhook POST (WIRE.md §2): the events
// of one family (deliveries, bounces or blocks), in the given order, in the
// version and encoding the settings choose. The output depends only on its
// inputs, byte for byte — field order is fixed by the record types below —
// so a batch encoded again after a crash is the same batch.
func Encode(s settings.EventWebhook, serverComposition string, family string, evs []event.Event) (contentType string, body []byte, err error) {
	if len(evs) == 0 {
		return "", nil, errors.New("encode batch: no events")
	}
	switch {
	case s.Version < settings.MinVersion || s.Version > settings.MaxVersion:
		return "", nil, fmt.Errorf("encode batch: unknown version %d", s.Version)
	case s.Version == 1 && s.JSON:
		return "", nil, errors.New("encode batch: version 1 has no JSON format")
	case s.Version == 3 && !s.JSON:
		return "", nil, errors.New("encode batch: version 3 is JSON only")
	}
	switch family {
	case settings.Deliveries, settings.Bounces:
	case settings.Blocks:
		if s.Version == 1 {
			return "", nil, errors.New("encode batch: version 1 has no blocks records")
		}
	default:
		return "", nil, fmt.Errorf("encode batch: unknown event type %q", family)
	}
	loc, err := location(s.Timezone)
	if err != nil {
		return "", nil, fmt.Errorf("encode batch: %w", err)
	}
	records := make([]any, len(evs))
	for i := range evs {
		e := &evs[i]
		if f := e.Type.Family(); !e.Type.Valid() || f != family {
			return "", nil, fmt.Errorf("encode batch: event %s of type %q is not a %s record", e.ID, e.Type, family)
		}
		records[i] = record(s.Version, e, loc)
	}
	apiKey := string(s.APIKey)
	if s.APIKeyBearer {
		apiKey = "" // WIRE.md §1: sent as Authorization: Bearer, then not in the body
	}
	events := map[string][]any{family: records} // one key: its order cannot vary
	// encoding/json escapes '<', '>' and '&' as \u003c and so on, which
	// WIRE.md §2 allows; it also turns invalid UTF-8 into U+FFFD, so the
	// body is always valid JSON.

	if s.JSON {
		b, err := json.Marshal(jsonBody{APIKey: apiKey, ServerComposition: serverComposition, EventType: family, Event: events})
		if err != nil {
			return "", nil, fmt.Errorf("encode batch: %w", err)
		}
		return ContentTypeJSON, b, nil
	}
	ev, err := json.Marshal(events)
	if err != nil {
		return "", nil, fmt.Errorf("encode batch: %w", err)
	}
	// Written by hand rather than with url.Values.Encode, which sorts the
	// keys: this keeps WIRE.md's parameter order.
	var b bytes.Buffer
	if apiKey != "" {
		b.WriteString("api_key=")
		b.WriteString(url.QueryEscape(apiKey))
		b.WriteByte('&')
	}
	b.WriteString("server_composition=")
	b.WriteString(url.QueryEscape(serverComposition))
	b.WriteString("&event_type=")
	b.WriteString(family)
	b.WriteString("&event=")
	b.WriteString(url.QueryEscape(string(ev)))
	return ContentTypeForm, b.Bytes(), nil
}

// jsonBody is the "use JSON format" body: event is a nested object.
type jsonBody struct {
	APIKey            string           `json:"api_key,omitempty"`
	ServerComposition string           `json:"server_composition"`
	EventType         string           `json:"event_type"`
	Event             map[string][]any `json:"event"`
}

// zones caches loaded time zones: time.LoadLocation reads the zone file
// each time.
var zones sync.Map // name → *time.Location

func location(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := settings.EventWebhook{Timezone: name}.Location()
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

// record returns the wire record of e for the version. All values are
// strings (WIRE.md §2).
func record(version int, e *event.Event, loc *time.Location) any {
	created := e.Time.In(loc).Format(createdLayout)
	// WIRE.md §2: sourceIp only on queued, senderIp only where we delivered.
	var sourceIP, senderIP string
	switch e.Type {
	case event.Queued:
		sourceIP = e.SourceIP
	case event.Succeeded, event.Deferred, event.Failed:
		senderIP = e.SenderIP
	}
	class := e.Class
	if class == event.ClassNone {
		class = event.ClassOther // a bounce without analysis is "other"
	}
	switch e.Type.Family() {
	case settings.Bounces:
		v2 := v2Bounce{created, e.ReturnPath, e.From, e.Recipient(), e.MessageID, e.Subject, e.APIData, e.Reason, class.String()}
		switch version {
		case 1:
			return v1Bounce{created, e.ReturnPath, e.Recipient(), e.MessageID, e.Subject, e.Reason, class.String()}
		case 2:
			return v2
		}
		return v3Bounce{native(e, loc), v2, class.Word()}
	case settings.Blocks:
		v2 := v2Block{created, e.Recipient(), string(e.Type), blockReason(e), e.APIData}
		if version == 2 {
			return v2
		}
		return v3Block{native(e, loc), v2}
	}
	v2 := v2Delivery{created, e.ReturnPath, e.From, e.Recipient(), e.MessageID, e.Reason, senderIP, sourceIP, string(e.Type), e.Subject, e.APIData}
	switch version {
	case 1:
		return v1Delivery{created, e.ReturnPath, e.Recipient(), e.MessageID, e.Reason, senderIP, sourceIP, string(e.Type), e.Subject}
	case 2:
		return v2
	}
	return v3Delivery{native(e, loc), v2}
}

// blockReason is WIRE.md §2's blocks reason: the error class that caused
// the suppression, or "manual". A suppression carrying a Reason of its own
// (an unsubscribe source, say) keeps it.
func blockReason(e *event.Event) string {
	switch {
	case e.Class != event.ClassNone:
		return e.Class.String()
	case e.Reason != "":
		return e.Reason
	}
	return "manual"
}

func native(e *event.Event, loc *time.Location) v3Fields {
	attempt := ""
	if e.Attempt > 0 {
		attempt = strconv.Itoa(e.Attempt)
	}
	return v3Fields{
		ID: e.ID, Time: e.Time.In(loc).Format(time.RFC3339Nano), Host: e.Host, QueueID: e.QueueID,
		Relay: e.Relay, DSN: e.DSN, Delay: e.Delay, Attempt: attempt,
	}
}

// The record types fix each version's field names and order (WIRE.md §2).
// Versions 1 and 2 carry exactly these fields: strict receivers reject
// unknown keys.

type v1Delivery struct {
	Created      string `json:"created"`
	EnvelopeFrom string `json:"envelopeFrom"`
	EnvelopeTo   string `json:"envelopeTo"`
	MessageID    string `json:"messageId"`
	Reason       string `json:"reason"`
	SenderIP     string `json:"senderIp"`
	SourceIP     string `json:"sourceIp"`
	Status       string `json:"status"`
	Subject      string `json:"subject"`
}

type v2Delivery struct {
	Created    string `json:"created"`
	ReturnPath string `json:"returnPath"`
	From       string `json:"from"`
	To         string `json:"to"`
	MessageID  string `json:"messageId"`
	Reason     string `json:"reason"`
	SenderIP   string `json:"senderIp"`
	SourceIP   string `json:"sourceIp"`
	Status     string `json:"status"`
	Subject    string `json:"subject"`
	APIData    string `json:"apiData"`
}

type v1Bounce struct {
	Created      string `json:"created"`
	EnvelopeFrom string `json:"envelopeFrom"`
	EnvelopeTo   string `json:"envelopeTo"`
	MessageID    string `json:"messageId"`
	Subject      string `json:"subject"`
	Reason       string `json:"reason"`
	Status       string `json:"status"`
}

type v2Bounce struct {
	Created    string `json:"created"`
	ReturnPath string `json:"returnPath"`
	From       string `json:"from"`
	To         string `json:"to"`
	MessageID  string `json:"messageId"`
	Subject    string `json:"subject"`
	APIData    string `json:"apiData"`
	Reason     string `json:"reason"`
	Status     string `json:"status"`
}

type v2Block struct {
	Created string `json:"created"`
	Email   string `json:"email"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	APIData string `json:"apiData"`
}

// v3Fields are what version 3 adds to every record, in front of the
// version-2 fields (embedded structs are flattened by encoding/json, in
// declaration order). Our choice: blocks records get them too, with ""
// where a field has no meaning, so every v3 record has one shape.
type v3Fields struct {
	ID      string `json:"id"`
	Time    string `json:"time"` // RFC 3339 with the offset of the configured zone
	Host    string `json:"host"`
	QueueID string `json:"queueId"`
	Relay   string `json:"relay"`
	DSN     string `json:"dsn"`
	Delay   string `json:"delay"`
	Attempt string `json:"attempt"`
}

type v3Delivery struct {
	v3Fields
	v2Delivery
}

type v3Bounce struct {
	v3Fields
	v2Bounce
	Class string `json:"class"` // the status as a word
}

type v3Block struct {
	v3Fields
	v2Block
}
