// Package forwarded owns trusting reverse proxies: which peers may say,
// through X-Forwarded-Proto, that the client's connection was HTTPS, and
// through X-Forwarded-For, who the client is. A header from any other
// peer is ignored, since a client can send it too.
package forwarded

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Trusted is the set of proxy addresses whose forwarding headers count.
// The zero value trusts no one.
type Trusted struct {
	nets []netip.Prefix
}

// Parse reads CIDRs ("10.0.0.0/8") or single addresses ("127.0.0.1",
// "::1"); field names the config key in errors.
func Parse(field string, list []string) (Trusted, error) {
	var t Trusted
	for i, s := range list {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return Trusted{}, fmt.Errorf("%s[%d]: %q is not a CIDR (10.0.0.0/8) or an IP address", field, i, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		t.nets = append(t.nets, p.Masked())
	}
	return t, nil
}

// Trusts reports whether the request came straight from a trusted proxy.
func (t Trusted) Trusts(r *http.Request) bool {
	if len(t.nets) == 0 {
		return false
	}
	a, err := netip.ParseAddr(peer(r))
	return err == nil && t.trustsAddr(a)
}

func (t Trusted) trustsAddr(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peer(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// ClientIP is the address of the client behind any trusted proxies: the
// peer, or, when the peer is a trusted proxy, the rightmost address of
// X-Forwarded-For that is not itself a trusted proxy (what is left of it
// the client may have written). Behind a proxy every request shares the
// proxy's address, so per-client throttling needs this.
func (t Trusted) ClientIP(r *http.Request) string {
	client := peer(r)
	if !t.Trusts(r) {
		return client
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return client // a hop we cannot read: stop at what we know
		}
		client = a.Unmap().String()
		if !t.trustsAddr(a) {
			break
		}
	}
	return client
}

// Secure reports whether the client's connection was HTTPS: TLS to us, or
// X-Forwarded-Proto: https from a trusted proxy. With several proxies the
// last value counts, as the nearest (trusted) proxy wrote it.
func (t Trusted) Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !t.Trusts(r) {
		return false
	}
	vals := r.Header.Values("X-Forwarded-Proto")
	if len(vals) == 0 {
		return false
	}
	last := vals[len(vals)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(last), "https")
}
