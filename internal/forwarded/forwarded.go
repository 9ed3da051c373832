// Package forwarded owns trusting reverse proxies: which peers may say,
// through X-Forwarded-Proto, that the client's connection was HTTPS. A
// header from any other peer is ignored, since a client can send it too.
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
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range t.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
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
