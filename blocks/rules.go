package blocks

import (
	"fmt"

	"github.com/posthorn/posthorn/event"
)

// Reason is why an address is on the list (WIRE.md §2 blocks records):
// "manual", "unsubscribe", or the bounce class that caused it as its
// number ("2").
type Reason string

const (
	ReasonManual      Reason = "manual"
	ReasonUnsubscribe Reason = "unsubscribe"
)

// ClassReason is the reason of an automatic registration after bounces of
// class c.
func ClassReason(c event.Class) Reason { return Reason(c.String()) }

// ParseReason accepts "manual", "unsubscribe" or a bounce class number of
// WIRE.md's table.
func ParseReason(s string) (Reason, error) {
	switch Reason(s) {
	case ReasonManual, ReasonUnsubscribe:
		return Reason(s), nil
	}
	for c := range autoClasses() {
		if s == c.String() {
			return Reason(s), nil
		}
	}
	return "", fmt.Errorf("parse reason %q: want manual, unsubscribe or a bounce class (1-9, 99)", s)
}

// Rule is the automatic registration setting of one bounce class: when
// Enabled, an address is registered once it has bounced with that class
// After times.
type Rule struct {
	Class   event.Class
	Enabled bool
	After   int
}

// Rules are the per-class settings. A class without a rule never
// registers automatically.
type Rules map[event.Class]Rule

// autoClasses are the classes a bounce can carry that may register an
// address: 10 and 11 are the suppression list's own refusals and would
// only re-register what is already blocked.
func autoClasses() map[event.Class]bool {
	return map[event.Class]bool{
		event.ClassUnknownHost: true, event.ClassUnknownUser: true, event.ClassTimeout: true,
		event.ClassPolicy: true, event.ClassOverCapacity: true, event.ClassForwarding: true,
		event.ClassReceiverError: true, event.ClassTooLarge: true, event.ClassAddressFormat: true,
		event.ClassOther: true,
	}
}

// DefaultRules is automatic registration as shipped: off for every class
// (issue 7), with counts that make sense once switched on — an unknown
// user or host is final after one bounce, a full mailbox or a policy
// refusal may clear, so they wait for three.
func DefaultRules() Rules {
	r := Rules{}
	for c := range autoClasses() {
		after := 3
		switch c {
		case event.ClassUnknownUser, event.ClassUnknownHost, event.ClassAddressFormat:
			after = 1
		}
		r[c] = Rule{Class: c, After: after}
	}
	return r
}

// Validate reports a rule for a class that cannot register or a count
// below one.
func (r Rules) Validate() error {
	ok := autoClasses()
	for c, rule := range r {
		if rule.Class != c {
			return fmt.Errorf("validate rules: rule for class %d is filed under %d", rule.Class, c)
		}
		if !ok[c] {
			return fmt.Errorf("validate rules: class %d cannot register automatically", c)
		}
		if rule.After < 1 {
			return fmt.Errorf("validate rules: class %d: count %d, want at least 1", c, rule.After)
		}
	}
	return nil
}

// Register reports whether an address that has now bounced occurrences
// times with class c is to be registered: once the count reaches the
// rule's threshold, not only when it equals it, so that a threshold lowered
// below an address's count takes effect at its next bounce. The caller
// skips addresses already on the list.
func (r Rules) Register(c event.Class, occurrences int) bool {
	rule, ok := r[c]
	return ok && rule.Enabled && rule.After >= 1 && occurrences >= rule.After
}
