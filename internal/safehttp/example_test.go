package safehttp_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mcpauth/mcpauth/internal/safehttp"
)

func ExampleCheckURL() {
	for _, u := range []string{
		"https://client.example.com/cimd.json",
		"https://0x7f000001/cimd.json",
		"https://169.254.169.254/latest/meta-data/",
		"http://client.example.com/cimd.json",
	} {
		_, err := safehttp.CheckURL(u, false)
		var e *safehttp.Error
		if errors.As(err, &e) {
			fmt.Println(e.Reason)
			continue
		}
		fmt.Println("ok")
	}
	// Output:
	// ok
	// invalid_host
	// blocked_address
	// scheme_not_allowed
}

func ExampleCheckAddr() {
	fmt.Println(safehttp.CheckAddr(netip.MustParseAddr("93.184.216.34"), false))
	fmt.Println(safehttp.CheckAddr(netip.MustParseAddr("64:ff9b::a9fe:a9fe"), false))
	// Output:
	// <nil>
	// 64:ff9b::a9fe:a9fe is a special-use address that is never fetched (CIMD section 8.6, RFC 6890): publish the document on a public address: in 64:ff9b::/96 (NAT64 well-known prefix (embeds IPv4), RFC 6052)
}

// Fetching a client's metadata document. Every failure is a *safehttp.Error;
// Unavailable says whether a cached copy may still be served.
func ExampleClient_Fetch() {
	c, err := safehttp.New(safehttp.Options{})
	if err != nil {
		panic(err)
	}
	resp, err := c.Fetch(context.Background(), safehttp.Request{
		URL:    "https://client.example.com/cimd.json",
		Accept: "application/cimd+json, application/json;q=0.9",
	})
	var e *safehttp.Error
	switch {
	case errors.As(err, &e) && e.Unavailable():
		fmt.Println("host down; serve the cached copy if it is recent:", e)
	case err != nil:
		fmt.Println("refused:", err)
	default:
		fmt.Printf("%d bytes from %s\n", len(resp.Body), resp.Addr)
	}
}

func ExampleError_Unavailable() {
	err := &safehttp.Error{Reason: safehttp.ReasonStatus, URL: "https://client.example.com/c.json", StatusCode: 503}
	fmt.Println(err.Unavailable())
	err = &safehttp.Error{Reason: safehttp.ReasonRedirect, URL: "https://client.example.com/c.json", StatusCode: 302}
	fmt.Println(err.Unavailable())
	fmt.Println(err)
	// Output:
	// true
	// false
	// fetch "https://client.example.com/c.json": the server answered 302; redirects are never followed (CIMD section 5): serve the document at this exact URL
}
