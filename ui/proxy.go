package ui

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// forwardedFor makes a request that comes through a trusted reverse proxy
// look as if it came from the client the proxy names, so that the login
// and token limits (keyed on the client's address) and the logs see the
// client, not the proxy everyone shares. X-Forwarded-For lists the
// addresses a request passed, each proxy appending the one it got it from;
// only the entries that trusted proxies appended can be believed, so the
// client is the right-most entry that is not itself a trusted proxy. The
// header of a request from anywhere else is ignored: any client can send
// one.
func forwardedFor(trusted []netip.Prefix, next http.Handler) http.Handler {
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !isTrusted(peer.Addr()) {
			next.ServeHTTP(w, r)
			return
		}
		var hops []string
		for _, h := range r.Header.Values("X-Forwarded-For") {
			hops = append(hops, strings.Split(h, ",")...)
		}
		client := peer.Addr()
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a proxy would not write this: believe no further
			}
			client = a.Unmap()
			if !isTrusted(client) {
				break
			}
		}
		ctx := r.Context()
		if forwardedHTTPS(r.Header) {
			ctx = context.WithValue(ctx, httpsKey{}, true)
		}
		if client != peer.Addr() || ctx != r.Context() {
			r2 := r.Clone(ctx)
			if client != peer.Addr() {
				r2.RemoteAddr = net.JoinHostPort(client.String(), "0")
			}
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// httpsKey marks a request that a trusted proxy received over HTTPS.
type httpsKey struct{}

// forwardedHTTPS reads X-Forwarded-Proto as the trusted proxy next to us
// wrote it: the last value, as a proxy appends its own to a list.
func forwardedHTTPS(h http.Header) bool {
	vals := h.Values("X-Forwarded-Proto")
	if len(vals) == 0 {
		return false
	}
	parts := strings.Split(vals[len(vals)-1], ",")
	return strings.EqualFold(strings.TrimSpace(parts[len(parts)-1]), "https")
}

// secure says the browser reached the console over HTTPS: directly
// (Options.TLS) or through a trusted proxy that says so. Cookies are then
// Secure with the __Host- prefix, and HSTS is sent.
func (s *Server) secure(r *http.Request) bool {
	if s.tls {
		return true
	}
	on, _ := r.Context().Value(httpsKey{}).(bool)
	return on
}
