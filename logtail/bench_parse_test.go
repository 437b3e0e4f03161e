package logtail

import (
	"testing"
)

// parseBenchMix is a day of a busy relay in miniature: per message a client=,
// message-id, queue active, delivery and removed, around them connects,
// disconnects, TLS and postscreen chatter, a share of deferrals and
// rejects, and lines from other programs. The proportions follow what
// pflogsumm reports for typical servers; the lines are the shapes of
// POSTFIX-LOGS.md.
var parseBenchMix = []string{
	"Oct 10 15:59:28 mail postfix/postscreen[1829]: CONNECT from [192.0.2.10]:53024 to [192.0.2.1]:25",
	"Oct 10 15:59:28 mail postfix/postscreen[1829]: PASS OLD [192.0.2.10]:53024",
	"Oct 10 15:59:28 mail postfix/smtpd[1830]: connect from client.example.org[192.0.2.10]",
	"Oct 10 15:59:28 mail postfix/smtpd[1830]: Anonymous TLS connection established from client.example.org[192.0.2.10]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (4096 bits) server-digest SHA256",
	"Oct 10 15:59:28 mail postfix/smtpd[1830]: C6E0DDB74006: client=client.example.org[192.0.2.10]",
	"Oct 10 15:59:28 mail postfix/cleanup[1894]: C6E0DDB74006: message-id=<A40CF64D-7F2D-42E4-8A76-CBFFF64A6EB1@example.org>",
	"Oct 10 15:59:28 mail postfix/qmgr[18719]: C6E0DDB74006: from=<sender@example.org>, size=309891, nrcpt=1 (queue active)",
	"Oct 10 15:59:28 mail postfix/smtpd[1830]: disconnect from client.example.org[192.0.2.10] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7",
	"Oct 10 15:59:29 mail postfix/smtp[1417]: Trusted TLS connection established to mx.example.com[198.51.100.10]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
	"Oct 10 15:59:29 mail postfix/smtp[1417]: C6E0DDB74006: to=<someone@example.com>, relay=mx.example.com[198.51.100.10]:25, delay=0.61, delays=0.02/0.01/0.33/0.25, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 71111424269E)",
	"Oct 10 15:59:29 mail postfix/qmgr[18719]: C6E0DDB74006: removed",
	"Oct 10 15:59:30 mail postfix/pickup[1901]: 5883D2F802C6: uid=108 from=<app@example.org>",
	"Oct 10 15:59:30 mail postfix/cleanup[1894]: 5883D2F802C6: message-id=<20241010155930.5883D2F802C6@mail.example.org>",
	"Oct 10 15:59:30 mail postfix/qmgr[18719]: 5883D2F802C6: from=<app@example.org>, size=1844, nrcpt=2 (queue active)",
	"Oct 10 15:59:31 mail postfix/smtp[1418]: 5883D2F802C6: to=<user@example.net>, orig_to=<alias@example.org>, relay=mx.example.net[2001:db8::25]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK 1514512452 qc12si8475009pab.211 - gsmtp)",
	"Oct 10 15:59:31 mail postfix/smtp[1419]: 5883D2F802C6: to=<order@slow.example>, relay=none, delay=30, delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to slow.example[203.0.113.19]:25: Connection timed out)",
	"Oct 10 15:59:32 mail postfix/smtpd[1831]: NOQUEUE: reject: RCPT from unknown[203.0.113.82]: 554 5.7.1 <verify@example.org>: Relay access denied; from=<spam@example.com> to=<verify@example.org> proto=ESMTP helo=<example.com>",
	"Oct 10 15:59:32 mail postfix/smtpd[1831]: lost connection after RCPT from unknown[203.0.113.82]",
	"Oct 10 15:59:33 mail postfix/lmtp[1420]: B0CC6104BA2: to=<ayse@example.org>, relay=mail.example.org[private/dovecot-lmtp], delay=0.15, delays=0.04/0/0.02/0.08, dsn=2.0.0, status=sent (250 2.0.0 <ayse@example.org> qYyyBMsl9FRuZQAAA15QOA Saved)",
	"Oct 10 15:59:34 mail postfix/smtp[1421]: 732BB407C3: to=<gone@example.com>, relay=mx.example.com[198.51.100.10]:25, delay=1.9, delays=0.05/0/1.1/0.71, dsn=5.1.1, status=bounced (host mx.example.com[198.51.100.10] said: 550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))",
	"Oct 10 15:59:34 mail postfix/bounce[1422]: 732BB407C3: sender non-delivery notification: 5DE184083C",
	"Oct 10 15:59:35 mail dovecot: lmtp(ayse@example.org)<1234><qYyyBMsl9FRuZQAAA15QOA>: msgid=<x@example.org>: saved mail to INBOX",
	"Oct 10 15:59:35 mail amavis[2765]: (02765-01) Passed CLEAN {RelayedInbound}, [192.0.2.10]:41232 <a@example.org> -> <b@example.org>, Queue-ID: 90693104B8D, size: 100, 117 ms",
	"Oct 10 15:59:36 mail postfix/anvil[1423]: statistics: max connection rate 1/60s for (smtpd:192.0.2.10) at Oct 10 15:59:28",
}

// parseBenchLines is the mix for tests that want it.
func parseBenchLines(testing.TB) []string { return parseBenchMix }

// BenchmarkParse parses the mix over and over and reports lines per second
// on one core.
func BenchmarkParse(b *testing.B) {
	var size int64
	for _, l := range parseBenchMix {
		size += int64(len(l)) + 1
	}
	b.SetBytes(size / int64(len(parseBenchMix)))
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		r, err := Parse(parseBenchMix[n%len(parseBenchMix)])
		if err == nil && r.Kind > KindReject {
			b.Fatal("impossible kind")
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
}
