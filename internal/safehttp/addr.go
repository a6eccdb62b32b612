package safehttp

import (
	"fmt"
	"net/netip"
)

// specialRange is one row of the special-use block table (CIMD §8.6, RFC 6890
// and the IANA special-purpose address registries).
type specialRange struct {
	prefix netip.Prefix
	name   string // what the range is, with the RFC that reserves it
}

// p4 builds an IPv4 prefix without parsing text.
func p4(a, b, c, d byte, bits int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{a, b, c, d}), bits)
}

// p6 builds an IPv6 prefix from its leading 16-bit groups, e.g.
// p6(32, 0x2001, 0x0db8) is 2001:db8::/32.
func p6(bits int, groups ...uint16) netip.Prefix {
	var b [16]byte
	for i, g := range groups {
		b[2*i], b[2*i+1] = byte(g>>8), byte(g)
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), bits)
}

// specialUse4 is the IPv4 block table of CIMD §8.6, RFC 6890. More specific
// rows come first so the error names the narrowest range. It is a function, not
// a package variable (CONVENTIONS: no package globals); building it costs a few
// nanoseconds.
func specialUse4() [16]specialRange {
	return [...]specialRange{
		{p4(0, 0, 0, 0, 8), `"this network", RFC 791`},
		{p4(10, 0, 0, 0, 8), "private-use, RFC 1918"},
		{p4(100, 64, 0, 0, 10), "shared address space (carrier-grade NAT), RFC 6598"},
		{p4(127, 0, 0, 0, 8), "loopback, RFC 1122"},
		{p4(169, 254, 0, 0, 16), "link-local (cloud metadata services), RFC 3927"},
		{p4(172, 16, 0, 0, 12), "private-use, RFC 1918"},
		{p4(192, 0, 0, 0, 24), "IETF protocol assignments, RFC 6890"},
		{p4(192, 0, 2, 0, 24), "documentation (TEST-NET-1), RFC 5737"},
		{p4(192, 88, 99, 0, 24), "6to4 relay anycast, RFC 7526"},
		{p4(192, 168, 0, 0, 16), "private-use, RFC 1918"},
		{p4(198, 18, 0, 0, 15), "benchmarking, RFC 2544"},
		{p4(198, 51, 100, 0, 24), "documentation (TEST-NET-2), RFC 5737"},
		{p4(203, 0, 113, 0, 24), "documentation (TEST-NET-3), RFC 5737"},
		{p4(224, 0, 0, 0, 4), "multicast, RFC 5771"},
		{p4(255, 255, 255, 255, 32), "limited broadcast, RFC 919"},
		{p4(240, 0, 0, 0, 4), "reserved, RFC 1112"},
	}
}

// specialUse6 is the IPv6 block table of CIMD §8.6, RFC 6890. ::ffff:0:0/96 is
// not a row: CheckAddr unmaps such addresses and checks the embedded IPv4
// address. Everything outside 2000::/3 is refused as well (see CheckAddr), so
// the rows outside it only give a more precise error.
func specialUse6() [14]specialRange {
	return [...]specialRange{
		{p6(128), "unspecified, RFC 4291"},
		{p6(128, 0, 0, 0, 0, 0, 0, 0, 1), "loopback, RFC 4291"},
		{p6(96, 0x64, 0xff9b), "NAT64 well-known prefix (embeds IPv4), RFC 6052"},
		{p6(48, 0x64, 0xff9b, 1), "local-use NAT64 (embeds IPv4), RFC 8215"},
		{p6(64, 0x100), "discard-only, RFC 6666"},
		{p6(32, 0x2001, 0), "Teredo (embeds IPv4), RFC 4380"},
		{p6(23, 0x2001), "IETF protocol assignments, RFC 2928"},
		{p6(32, 0x2001, 0xdb8), "documentation, RFC 3849"},
		{p6(16, 0x2002), "6to4 (embeds IPv4), RFC 3056"},
		{p6(20, 0x3fff), "documentation, RFC 9637"},
		{p6(7, 0xfc00), "unique local, RFC 4193"},
		{p6(10, 0xfe80), "link-local, RFC 4291"},
		{p6(10, 0xfec0), "site-local (deprecated), RFC 3879"},
		{p6(8, 0xff00), "multicast, RFC 4291"},
	}
}

// globalUnicast6 is 2000::/3, the only IPv6 space IANA allocates for global
// unicast (RFC 4291 §2.4). Addresses outside it (including the deprecated
// IPv4-compatible ::a.b.c.d) are never dialled.
func globalUnicast6() netip.Prefix { return p6(3, 0x2000) }

// CheckAddr reports whether a may be dialled: nil, or an *Error with
// ReasonBlockedAddress that names the special-use range (CIMD §8.6, RFC 6890).
//
// Only global unicast addresses outside every range of the CIMD §8.6 table are
// allowed. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are unmapped and the
// embedded IPv4 address is checked. IPv6 addresses must lie in 2000::/3, and
// NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16) and Teredo
// (2001::/32) are refused because they can reach arbitrary IPv4 addresses.
// Addresses with a zone are refused. With allowLoopback (CIMD §8.6,
// CIMD §8.6; development only) 127.0.0.0/8 and ::1 are
// allowed; nothing else is.
//
// CheckAddr does no I/O and is safe for concurrent use.
func CheckAddr(a netip.Addr, allowLoopback bool) error {
	if !a.IsValid() {
		return &Error{Reason: ReasonBlockedAddress, Err: fmt.Errorf("the address is empty")}
	}
	if a.Zone() != "" {
		return &Error{Reason: ReasonBlockedAddress, Addr: a, Err: fmt.Errorf("addresses with a zone are scoped to one link")}
	}
	orig := a
	a = a.Unmap()
	if allowLoopback && a.IsLoopback() {
		return nil
	}
	if why := specialUse(a); why != "" {
		if orig != a {
			why = fmt.Sprintf("IPv4-mapped address of %s, which is %s", a, why)
		}
		return &Error{Reason: ReasonBlockedAddress, Addr: orig, Err: fmt.Errorf("%s", why)}
	}
	if !a.IsGlobalUnicast() {
		return &Error{Reason: ReasonBlockedAddress, Addr: orig, Err: fmt.Errorf("not a global unicast address")}
	}
	return nil
}

// specialUse names the range a (already unmapped) belongs to, or "" when it
// is in none.
func specialUse(a netip.Addr) string {
	if a.Is4() {
		for _, r := range specialUse4() {
			if r.prefix.Contains(a) {
				return fmt.Sprintf("in %s (%s)", r.prefix, r.name)
			}
		}
		return ""
	}
	for _, r := range specialUse6() {
		if r.prefix.Contains(a) {
			return fmt.Sprintf("in %s (%s)", r.prefix, r.name)
		}
	}
	if g := globalUnicast6(); !g.Contains(a) {
		return fmt.Sprintf("outside %s, the IPv6 global unicast space (RFC 4291)", g)
	}
	return ""
}
