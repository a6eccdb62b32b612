package token

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// A server loads the keys once at start, calls Maintain every
// MaintainInterval, signs access tokens at the token endpoint and verifies
// them at the introspection endpoint. Here an in-memory store stands in for
// store.Store.
func ExampleKeys() {
	keys := NewKeys(newFakeKeyStore(), KeyOptions{TokenLifetime: 10 * time.Minute})
	if err := keys.Load(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	now := time.Now()
	tok, err := keys.SignAccessToken(AccessClaims{
		Issuer:    "https://as.example",
		Subject:   "user-1",
		ClientID:  "https://client.example/cimd.json",
		Audience:  "https://mcp.example/mcp",
		Scope:     "files:read",
		JTI:       NewID(),
		IssuedAt:  now,
		ExpiresAt: now.Add(10 * time.Minute),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	claims, err := keys.VerifyAccessToken(tok, now)
	fmt.Println(claims.Subject, claims.Audience, claims.Scope, err)
	// Output: user-1 https://mcp.example/mcp files:read <nil>
}

func ExampleNewOpaque() {
	code, hash := NewOpaque(CodePrefix)
	// Hand code to the client; store only hash. A presented code is looked
	// up by Hash(code).
	fmt.Println(strings.HasPrefix(code, "mca_c_"), len(code), hash == Hash(code), len(hash))
	// Output: true 61 true 80
}
