package config

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "90s", want: 90 * time.Second},
		{in: "168h", want: 168 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "0", want: 0},
		{in: "-1s", want: -time.Second},
		{in: "7d", want: 7 * day},
		{in: "0d", want: 0},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "2d30m5s", want: 2*day + 30*time.Minute + 5*time.Second},
		{in: "", err: `invalid duration "": want a number with a unit, such as "90s", "168h" or "7d"`},
		{in: "7", err: `invalid duration "7": want a number with a unit, such as "90s", "168h" or "7d"`},
		{in: "7 days", err: `invalid duration "7 days": want a number with a unit, such as "90s", "168h" or "7d"`},
		{in: "d", err: `invalid duration "d": want a number with a unit, such as "90s", "168h" or "7d"`},
		{in: "1.5d", err: `invalid duration "1.5d": want a number with a unit, such as "90s", "168h" or "7d"`},
		{in: "-1d", err: `invalid duration "-1d": want a number with a unit, such as "90s", "168h" or "7d"`},
		{in: "+1d", err: `invalid duration "+1d": want a number with a unit, such as "90s", "168h" or "7d"`},
		{in: "1d-1h", err: `invalid duration "1d-1h": want a number with a unit, such as "90s", "168h" or "7d"`},
		{in: "1d1d", err: `invalid duration "1d1d": want a number with a unit, such as "90s", "168h" or "7d"`},
		{in: "106751d", want: 106751 * day},
		{in: "106752d", err: `invalid duration "106752d": too long`},
		{in: "106751d23h59m59s", err: `invalid duration "106751d23h59m59s": too long`},
		{in: "99999999999999999999d", err: `invalid duration "99999999999999999999d": want a number with a unit, such as "90s", "168h" or "7d"`},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		switch {
		case tt.err != "":
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: got %v, %v; want error %q", tt.in, time.Duration(d), err, tt.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.in, err)
		case time.Duration(d) != tt.want:
			t.Errorf("%q = %v, want %v", tt.in, time.Duration(d), tt.want)
		}
	}
}

// String writes what ParseDuration reads back, in the shortest usual form.
func TestDurationString(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{10 * time.Second, "10s"},
		{90 * time.Minute, "1h30m"},
		{time.Hour, "1h"},
		{time.Minute, "1m"},
		{time.Hour + time.Second, "1h0m1s"},
		{7 * day, "7d"},
		{36 * time.Hour, "36h"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		d := Duration(tt.in)
		if got := d.String(); got != tt.want {
			t.Errorf("%v: String() = %q, want %q", tt.in, got, tt.want)
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Errorf("%v: ParseDuration(%q) = %v, %v", tt.in, d.String(), time.Duration(back), err)
		}
	}
}
