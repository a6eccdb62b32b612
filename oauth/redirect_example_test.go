package oauth_test

import (
	"fmt"

	"github.com/mcpauth/mcpauth/oauth"
)

// A native client registers a port-less loopback redirect URI and listens on
// an ephemeral port (RFC 8252 §7.3); any other difference fails the match.
func ExampleMatchRedirectURI() {
	registered := "http://127.0.0.1/callback"
	fmt.Println(oauth.MatchRedirectURI(registered, "http://127.0.0.1:54321/callback"))
	fmt.Println(oauth.MatchRedirectURI(registered, "http://127.0.0.1:54321/other"))
	fmt.Println(oauth.MatchRedirectURI("https://app.example/cb", "https://app.example/cb/"))
	// Output:
	// true
	// false
	// false
}
