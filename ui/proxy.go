package ui

import (
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
		if client != peer.Addr() {
			r2 := r.Clone(r.Context())
			r2.RemoteAddr = net.JoinHostPort(client.String(), "0")
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}
