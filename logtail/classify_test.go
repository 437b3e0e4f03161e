package logtail

import (
	"testing"

	"github.com/posthorn/posthorn/event"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		dsn, reason string
		want        event.Class
	}{
		// Reasons as Postfix logs them (POSTFIX-LOGS.md §2.2, §2.5, §2.7).
		{"5.1.1", `unknown user: "theman"`, event.ClassUnknownUser},
		{"5.1.10", "host outlook-com.olc.protection.outlook.com[192.0.2.9] said: 550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup (in reply to RCPT TO command)", event.ClassUnknownUser},
		{"5.1.10", "host mx.example.com[192.0.2.1] said: 556 5.1.10 Recipient address has null MX (in reply to RCPT TO command)", event.ClassUnknownHost},
		{"5.0.0", "host mta7.am0.yahoodns.net[192.0.2.3] said: 554 delivery error: dd This user doesn't have a yahoo.com account (x@yahoo.com) [0] - mta1018.mail.gq1.yahoo.com (in reply to end of DATA command)", event.ClassUnknownUser},
		{"5.1.1", "User unknown in virtual alias table", event.ClassUnknownUser},
		{"5.1.1", "host mx.example.com[192.0.2.1] said: 550 5.1.1 <board@example.com>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)", event.ClassUnknownUser},
		{"5.0.0", "host mx.example.com[192.0.2.1] said: 550 No such user here (in reply to RCPT TO command)", event.ClassUnknownUser},
		{"5.5.0", "host mx.example.com[192.0.2.1] said: 550 Requested action not taken: mailbox unavailable (in reply to RCPT TO command)", event.ClassUnknownUser},
		{"5.1.1", "host gmail-smtp-in.l.example.com[192.0.2.2] said: 550-5.1.1 The email account that you tried to reach does not exist. (in reply to RCPT TO command)", event.ClassUnknownUser},
		{"5.0.0", "host mx.example.com[192.0.2.1] said: 550 that address does not exist here (in reply to RCPT TO command)", event.ClassUnknownUser},

		{"5.4.4", "Host or domain name not found. Name service error for name=corp.example type=AAAA: Host not found", event.ClassUnknownHost},
		{"5.1.2", "host mx.example.com[192.0.2.1] said: 550 5.1.2 bad destination system address (in reply to RCPT TO command)", event.ClassUnknownHost},
		{"5.0.0", "Host or domain name not found. Name service error for name=nosuchdomain.invalid type=MX: Host not found", event.ClassUnknownHost},
		{"5.1.10", "host mx.example.com[192.0.2.1] said: 556 5.1.10 Recipient address has null MX (in reply to RCPT TO command)", event.ClassUnknownHost},

		{"5.7.1", "host gmail-smtp-in.l.example.com[2607:f8b0:400e:c04::1b] said: 550-5.7.1 [2607:4100:3:25:100::2      12] Our system has detected that this 550-5.7.1 message is likely unsolicited mail. 550 5.7.1 more information. qc12si8475009pab.211 - gsmtp (in reply to end of DATA command)", event.ClassPolicy},
		{"5.7.1", "host mx.example.com[192.0.2.1] said: 554 5.7.1 Service unavailable; Client host [192.0.2.58] blocked using zen.spamhaus.org (in reply to RCPT TO command)", event.ClassPolicy},
		{"5.0.0", "host mx.example.com[192.0.2.1] said: 550 Your IP is on our blacklist (in reply to MAIL FROM command)", event.ClassPolicy},
		{"5.7.1", "host mx.example.com[192.0.2.1] said: 550 5.7.1 <a@example.org>: Sender address rejected: Domain not found (in reply to RCPT TO command)", event.ClassPolicy},
		{"5.0.0", "host smtp-gate.example.com[198.51.100.211] said: 553 sorry, this recipient is not in my validrcptto list (#5.7.1) (in reply to RCPT TO command)", event.ClassPolicy},
		{"5.7.26", "host mx.example.com[192.0.2.1] said: 550 5.7.26 Unauthenticated email is not accepted due to DMARC policy (in reply to end of DATA command)", event.ClassPolicy},

		{"5.2.2", "host c3.example.org[private/dovecot-lmtp] said: 552 5.2.2 <user1@c3.example.org> Quota exceeded (mailbox for user is full) (in reply to end of DATA command)", event.ClassOverCapacity},
		{"5.0.0", "host mx.example.com[192.0.2.1] said: 552 Mailbox full (in reply to RCPT TO command)", event.ClassOverCapacity},
		{"5.2.2", "host mx.example.com[192.0.2.1] said: 552 5.2.2 mailbox over limit (in reply to RCPT TO command)", event.ClassOverCapacity},

		{"5.3.4", "message size 31457280 exceeds size limit 10240000 of server mx.example.com[192.0.2.1]", event.ClassTooLarge},
		{"5.2.3", "host mx.example.com[192.0.2.1] said: 552 5.2.3 Message length exceeds administrative limit (in reply to end of DATA command)", event.ClassTooLarge},
		{"5.2.2", "host mx.example.com[192.0.2.1] said: 552 5.2.2 Message size exceeds fixed maximum message size (in reply to MAIL FROM command)", event.ClassTooLarge},
		{"5.0.0", "host mx.example.com[192.0.2.1] said: 552 message too large (in reply to end of DATA command)", event.ClassTooLarge},

		{"5.1.3", "bad address syntax", event.ClassAddressFormat},
		{"5.1.3", "host mx.example.com[192.0.2.1] said: 501 5.1.3 Bad recipient address syntax (in reply to RCPT TO command)", event.ClassAddressFormat},
		{"5.0.0", "host mx.example.com[192.0.2.1] said: 553 malformed address: <x@> (in reply to RCPT TO command)", event.ClassAddressFormat},

		{"5.7.1", "host mx.example.com[192.0.2.1] said: 554 5.7.1 <smtp@example.com>: Relay access denied (in reply to RCPT TO command)", event.ClassReceiverError},
		{"5.0.0", "host mx.example.com[192.0.2.1] said: 553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1) (in reply to RCPT TO command)", event.ClassReceiverError},
		{"5.0.0", "host mx.example.com[192.0.2.1] said: 550 relaying denied (in reply to RCPT TO command)", event.ClassReceiverError},
		{"5.0.0", "host mx.example.com[192.0.2.1] said: 550 domain not served here (in reply to RCPT TO command)", event.ClassReceiverError},
		{"5.3.0", "host mx.example.com[192.0.2.1] said: 554 5.3.0 mail system configuration error (in reply to RCPT TO command)", event.ClassReceiverError},

		{"5.4.6", "mail forwarding loop for tom@example.com", event.ClassForwarding},
		{"5.0.0", "host mx.example.com[192.0.2.1] said: 554 Too many hops (in reply to end of DATA command)", event.ClassForwarding},
		{"5.2.4", "host lists.example.com[192.0.2.1] said: 550 5.2.4 mailing list expansion problem (in reply to RCPT TO command)", event.ClassForwarding},

		// Nothing to go on.
		{"5.0.0", "example.com", event.ClassOther},
		{"5.0.0", "", event.ClassOther},
		{"", "", event.ClassOther},
		{"1.2.3", "odd", event.ClassOther},
		{"5.5.2", "host mx.example.com[192.0.2.1] said: 500 5.5.2 what? (in reply to RCPT TO command)", event.ClassOther},

		// The host name in "host X said:" is not evidence.
		{"5.1.2", "host spam-filter.example.com[192.0.2.1] said: 550 5.1.2 bad destination (in reply to RCPT TO command)", event.ClassUnknownHost},
		// An IP address or version in the text is not an embedded code.
		{"5.0.0", "host mx.example.com[192.0.2.1] said: 550 rejected by 10.5.1.1 v4.5.2.1 (in reply to RCPT TO command)", event.ClassOther},
	}
	for _, tt := range tests {
		if got := Classify(tt.dsn, tt.reason); got != tt.want {
			t.Errorf("Classify(%q, %q) = %v (%s), want %v (%s)", tt.dsn, tt.reason, got, got.Word(), tt.want, tt.want.Word())
		}
	}
}

func TestClassifyNotAllocating(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		Classify("5.0.0", "host mx.example.com[192.0.2.1] said: 553 sorry, this recipient is not in my validrcptto list (#5.7.1) (in reply to RCPT TO command)")
	})
	if allocs != 0 {
		t.Errorf("%v allocations", allocs)
	}
}
