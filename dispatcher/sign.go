package dispatcher

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// Standard Webhooks headers (standardwebhooks.com, spec v1.0.0, "Webhook
// Metadata"). They are written in lower case, as the spec spells them;
// HTTP/1.1 field names are case-insensitive (RFC 9110 §5.1).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
	// HeaderAttempt is our own: the 1-based attempt number, so a receiver
	// can tell a retry from a first delivery without keeping state.
	HeaderAttempt = "Posthorn-Attempt"
)

// Sign returns the webhook-signature value for one attempt: "v1," and the
// base64 HMAC-SHA256, keyed with the decoded secret, of "id.timestamp.body"
// (Standard Webhooks, "Signature scheme", symmetric). The timestamp is that
// of the attempt, so every retry is signed again: receivers refuse
// timestamps more than a few minutes old.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
