package dispatcher

import "testing"

func TestLogEndpoint(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://hooks.example.com/posthorn", "https://hooks.example.com/posthorn"},
		{"https://user:secret@hooks.example.com:8443/in?token=SECRET#x", "https://hooks.example.com:8443/in"},
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
