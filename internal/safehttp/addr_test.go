package safehttp

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// b4Table is the CIMD §8.6, RFC 6890 block list written out as text,
// independently of the byte-built table in addr.go, with addresses that must be
// blocked (first, last and one inside each range).
func b4Table() []struct {
	prefix string
	addrs  []string
} {
	return []struct {
		prefix string
		addrs  []string
	}{
		{"0.0.0.0/8", []string{"0.0.0.0", "0.1.2.3", "0.255.255.255"}},
		{"10.0.0.0/8", []string{"10.0.0.0", "10.0.0.5", "10.255.255.255"}},
		{"100.64.0.0/10", []string{"100.64.0.0", "100.100.100.200", "100.127.255.255"}},
		{"127.0.0.0/8", []string{"127.0.0.0", "127.0.0.1", "127.255.255.255"}},
		{"169.254.0.0/16", []string{"169.254.0.0", "169.254.169.254", "169.254.255.255"}},
		{"172.16.0.0/12", []string{"172.16.0.0", "172.20.1.1", "172.31.255.255"}},
		{"192.0.0.0/24", []string{"192.0.0.0", "192.0.0.170", "192.0.0.255"}},
		{"192.0.2.0/24", []string{"192.0.2.0", "192.0.2.1", "192.0.2.255"}},
		{"192.88.99.0/24", []string{"192.88.99.0", "192.88.99.1", "192.88.99.255"}},
		{"192.168.0.0/16", []string{"192.168.0.0", "192.168.1.1", "192.168.255.255"}},
		{"198.18.0.0/15", []string{"198.18.0.0", "198.19.1.1", "198.19.255.255"}},
		{"198.51.100.0/24", []string{"198.51.100.0", "198.51.100.7", "198.51.100.255"}},
		{"203.0.113.0/24", []string{"203.0.113.0", "203.0.113.9", "203.0.113.255"}},
		{"224.0.0.0/4", []string{"224.0.0.0", "224.0.0.251", "239.255.255.255"}},
		{"240.0.0.0/4", []string{"240.0.0.0", "250.1.2.3", "255.255.255.254"}},
		{"255.255.255.255/32", []string{"255.255.255.255"}},
		{"::/128", []string{"::"}},
		{"::1/128", []string{"::1"}},
		{"64:ff9b::/96", []string{"64:ff9b::", "64:ff9b::808:808", "64:ff9b::ffff:ffff"}},
		{"64:ff9b:1::/48", []string{"64:ff9b:1::", "64:ff9b:1::a00:1", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff"}},
		{"100::/64", []string{"100::", "100::1", "100::ffff:ffff:ffff:ffff"}},
		{"2001::/32", []string{"2001::", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"2001::/23", []string{"2001:1::1", "2001:2::1", "2001:10::1", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"2001:db8::/32", []string{"2001:db8::", "2001:db8::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"2002::/16", []string{"2002::", "2002:808:808::1", "2002:7f00:1::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"3fff::/20", []string{"3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"fc00::/7", []string{"fc00::", "fd12:3456::1", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"fe80::/10", []string{"fe80::", "fe80::1", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"fec0::/10", []string{"fec0::1"}},
		{"ff00::/8", []string{"ff00::", "ff02::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
	}
}

func TestSpecialUseTableMatchesRFC6890(t *testing.T) {
	var got []string
	for _, r := range specialUse4() {
		got = append(got, r.prefix.String())
	}
	for _, r := range specialUse6() {
		got = append(got, r.prefix.String())
	}
	var want []string
	for _, row := range b4Table() {
		want = append(want, netip.MustParsePrefix(row.prefix).String())
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("special-use table differs from the RFC 6890 list (-want +code):\n%s", diff)
	}
	v4, v6 := specialUse4(), specialUse6()
	for _, r := range append(v4[:], v6[:]...) {
		if r.prefix != r.prefix.Masked() {
			t.Errorf("B4 prefix %s has host bits set", r.prefix)
		}
	}
}

func TestCheckAddrBlocksEveryB4Range(t *testing.T) {
	for _, row := range b4Table() {
		for _, s := range row.addrs {
			t.Run("B4 "+row.prefix+" "+s, func(t *testing.T) {
				a := netip.MustParseAddr(s)
				err := CheckAddr(a, false)
				e := wantError(t, err, ReasonBlockedAddress)
				if e.Addr != a {
					t.Errorf("Addr = %s, want %s", e.Addr, a)
				}
				if !strings.Contains(err.Error(), "CIMD section 8.6, RFC 6890") {
					t.Errorf("message %q does not cite CIMD section 8.6, RFC 6890", err)
				}
			})
		}
	}
}

func TestCheckAddrEmbeddedForms(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		inError string // a substring the message must contain
	}{
		{"B4 IPv4-mapped loopback", "::ffff:127.0.0.1", "127.0.0.0/8"},
		{"B4 IPv4-mapped metadata (attack 9 ::ffff:a9fe:a9fe)", "::ffff:a9fe:a9fe", "169.254.0.0/16"},
		{"B4 IPv4-mapped private", "::ffff:10.0.0.1", "10.0.0.0/8"},
		{"B4 IPv4-mapped unspecified", "::ffff:0.0.0.0", "0.0.0.0/8"},
		{"B4 NAT64 of a private address", "64:ff9b::a00:1", "64:ff9b::/96"},
		{"B4 NAT64 of a public address", "64:ff9b::808:808", "64:ff9b::/96"},
		{"B4 local-use NAT64", "64:ff9b:1::7f00:1", "64:ff9b:1::/48"},
		{"B4 6to4 of loopback", "2002:7f00:1::1", "2002::/16"},
		{"B4 6to4 of a public address", "2002:808:808::1", "2002::/16"},
		{"B4 Teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32"},
		{"B4 IPv4-compatible (deprecated) loopback", "::127.0.0.1", "2000::/3"},
		{"B4 IPv4-compatible public", "::8.8.8.8", "2000::/3"},
		{"B4 unassigned IPv6 outside 2000::/3", "4000::1", "2000::/3"},
		{"B4 link-local with zone", "fe80::1%eth0", "zone"},
		{"B4 global with zone", "2606:4700::1111%eth0", "zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			err := CheckAddr(a, false)
			e := wantError(t, err, ReasonBlockedAddress)
			if e.Addr != a {
				t.Errorf("Addr = %s, want %s", e.Addr, a)
			}
			if !strings.Contains(err.Error(), tt.inError) {
				t.Errorf("message %q does not mention %q", err, tt.inError)
			}
		})
	}
	t.Run("B4 zero Addr", func(t *testing.T) {
		wantError(t, CheckAddr(netip.Addr{}, true), ReasonBlockedAddress)
	})
}

func TestCheckAddrAllowsPublicUnicast(t *testing.T) {
	for _, s := range []string{
		"93.184.216.34", "8.8.8.8", "1.1.1.1",
		"1.0.0.0", "9.255.255.255", "11.0.0.0", // around 10/8
		"100.63.255.255", "100.128.0.0", // around 100.64/10
		"126.255.255.255", "128.0.0.0", // around 127/8
		"169.253.255.255", "169.255.0.0", // around 169.254/16
		"172.15.255.255", "172.32.0.0", // around 172.16/12
		"192.0.1.0", "192.0.3.0", "192.88.98.255", "192.88.100.0",
		"192.167.255.255", "192.169.0.0",
		"198.17.255.255", "198.20.0.0", "198.51.99.255", "198.51.101.0",
		"203.0.112.255", "203.0.114.0", "223.255.255.255", // below 224/4
		"::ffff:8.8.8.8", // mapped public: the embedded address decides
		"2606:4700::1111", "2001:4860:4860::8888", "2001:200::1", "2a00:1450::1",
		"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::", // around 2001:db8::/32
		"2003::1", "3ffe:ffff::1", "3fff:1000::",
	} {
		t.Run("B4 allows "+s, func(t *testing.T) {
			if err := CheckAddr(netip.MustParseAddr(s), false); err != nil {
				t.Errorf("CheckAddr(%s) = %v, want nil", s, err)
			}
		})
	}
}

func TestCheckAddrLoopbackException(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		allowed bool
	}{
		{"B5 127.0.0.1", "127.0.0.1", true},
		{"B5 127.255.255.254", "127.255.255.254", true},
		{"B5 ::1", "::1", true},
		{"B5 IPv4-mapped loopback", "::ffff:127.0.0.1", true},
		{"B5 still blocks private", "10.0.0.1", false},
		{"B5 still blocks metadata", "169.254.169.254", false},
		{"B5 still blocks 0.0.0.0", "0.0.0.0", false},
		{"B5 still blocks ::", "::", false},
		{"B5 still blocks link-local IPv6", "fe80::1", false},
		{"B5 still blocks 6to4 loopback", "2002:7f00:1::1", false},
		{"B5 still blocks IPv4-compatible loopback", "::127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckAddr(netip.MustParseAddr(tt.addr), true)
			if got := err == nil; got != tt.allowed {
				t.Errorf("CheckAddr(%s, true) = %v, want allowed=%v", tt.addr, err, tt.allowed)
			}
			if err := CheckAddr(netip.MustParseAddr(tt.addr), false); err == nil {
				t.Errorf("CheckAddr(%s, false) = nil; loopback must be off by default", tt.addr)
			}
		})
	}
}

// FuzzCheckAddr checks CheckAddr against the textual CIMD §8.6, RFC 6890 table:
// an allowed address is global unicast and in no listed range, and an IPv4
// address and its IPv4-mapped form get the same answer.
func FuzzCheckAddr(f *testing.F) {
	for _, s := range []string{"8.8.8.8", "10.0.0.1", "::1", "2606:4700::1111", "64:ff9b::a00:1", "::ffff:127.0.0.1"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	var prefixes []netip.Prefix
	for _, row := range b4Table() {
		prefixes = append(prefixes, netip.MustParsePrefix(row.prefix))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		err := CheckAddr(a, false)
		if a.Is4() {
			mapped := netip.AddrFrom16(a.As16())
			if merr := CheckAddr(mapped, false); (merr == nil) != (err == nil) {
				t.Fatalf("CheckAddr(%s) = %v but CheckAddr(%s) = %v", a, err, mapped, merr)
			}
		}
		if err != nil {
			if r := reasonOf(err); r != ReasonBlockedAddress {
				t.Fatalf("CheckAddr(%s) reason = %q", a, r)
			}
			return
		}
		u := a.Unmap()
		if !u.IsGlobalUnicast() || u.IsPrivate() {
			t.Fatalf("CheckAddr allowed %s, which is not public global unicast", a)
		}
		if u.Is6() && !netip.MustParsePrefix("2000::/3").Contains(u) {
			t.Fatalf("CheckAddr allowed %s, outside 2000::/3", a)
		}
		for _, p := range prefixes {
			if p.Contains(u) {
				t.Fatalf("CheckAddr allowed %s, inside %s", a, p)
			}
		}
	})
}

func BenchmarkCheckAddr(b *testing.B) {
	for _, s := range []string{"93.184.216.34", "10.0.0.1", "2606:4700::1111", "::ffff:169.254.169.254", "fe80::1"} {
		a := netip.MustParseAddr(s)
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = CheckAddr(a, false)
			}
		})
	}
}
