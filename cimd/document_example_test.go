package cimd_test

import (
	"fmt"

	"github.com/mcpauth/mcpauth/cimd"
)

func ExampleParseDocument() {
	id, err := cimd.ParseClientID("https://cli.example/oauth/client.json")
	if err != nil {
		panic(err)
	}
	doc, warnings, err := cimd.ParseDocument([]byte(`{
		"client_id": "https://cli.example/oauth/client.json",
		"client_name": "Example CLI",
		"redirect_uris": ["http://127.0.0.1/callback"],
		"grant_types": ["authorization_code", "refresh_token", "client_credentials"]
	}`), id)
	if err != nil {
		panic(err)
	}
	fmt.Println(doc.DisplayName(id.Host()), doc.TokenEndpointAuthMethod, doc.GrantTypes)
	fmt.Println(doc.AllowsRedirectURI("http://127.0.0.1:49152/callback"))
	for _, w := range warnings {
		fmt.Println("warning:", w.Code)
	}
	// Output:
	// Example CLI none [authorization_code refresh_token]
	// true
	// warning: localhost_only_redirects
	// warning: grant_type_filtered
}

func ExampleParseDocument_rejected() {
	id, _ := cimd.ParseClientID("https://cli.example/oauth/client.json")
	_, _, err := cimd.ParseDocument([]byte(`{
		"client_id": "https://cli.example/oauth/client.json",
		"client_secret": "s3cret",
		"redirect_uris": ["http://evil.example/cb"]
	}`), id)
	fmt.Println(err)
	// Output:
	// remove client_secret: a client metadata document is public, so it must not carry a client secret; use token_endpoint_auth_method "none" or "private_key_jwt" (and 1 more problem)
}
