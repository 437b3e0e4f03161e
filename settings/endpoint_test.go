package settings

import (
	"slices"
	"testing"
)

func TestLogEndpoint(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://hooks.example.com/posthorn", "https://hooks.example.com/posthorn"},
		{"https://user:secret@hooks.example.com:8443/in?token=SECRET#x", "https://hooks.example.com:8443/in"},
		{"http://127.0.0.1:8080/hook?k=SECRET", "http://127.0.0.1:8080/hook"},
		{"https://[2001:db8::1]/hook", "https://[2001:db8::1]/hook"},
		{"not a url", "(unparsable endpoint)"},
		{"https://%zz", "(unparsable endpoint)"},
		{"", "(unparsable endpoint)"},
	} {
		if got := LogEndpoint(tc.in); got != tc.want {
			t.Errorf("LogEndpoint(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPlainHTTP(t *testing.T) {
	for in, want := range map[string]bool{
		"http://127.0.0.1/":      true,
		"HTTP://h.example/":      true,
		"https://h.example/":     false,
		"":                       false,
		"httpx://h.example/":     false,
		"h.example/http://x":     false,
		"ftp://h.example/http:x": false,
	} {
		if got := PlainHTTP(in); got != want {
			t.Errorf("PlainHTTP(%q) = %v, want %v", in, got, want)
		}
	}
	ew := valid()
	ew.Endpoint = "http://127.0.0.1:8080/events"
	in := Inbound{Filters: []InboundFilter{
		NewInboundFilter("a", "https://h.example/a"),
		NewInboundFilter("b", "http://h.example/b"),
	}}
	got := PlainHTTPFields(&ew, &in)
	if want := []string{"event_webhook.endpoint", "inbound.filters[1].endpoint"}; !slices.Equal(got, want) {
		t.Errorf("PlainHTTPFields = %q, want %q", got, want)
	}
	if got := PlainHTTPFields(nil, nil); got != nil {
		t.Errorf("PlainHTTPFields(nil, nil) = %q", got)
	}
}
