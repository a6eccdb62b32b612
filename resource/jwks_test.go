package resource

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpauth/mcpauth/oauth"
)

func TestJWKSRotation(t *testing.T) {
	is := newTestIssuer(t)
	k1, k2 := newES256Key(t, "k1"), newES256Key(t, "k2")
	is.publish(k1)
	clock := newFakeClock()
	v := is.verifier(t, func(o *JWTOptions) {
		o.Now = clock.Now
		o.JWKSMaxAge = 5 * time.Minute
		o.JWKSMinRefresh = 30 * time.Second
	})
	verify := func(k testKey) error {
		c := is.claims("")
		c["iat"], c["exp"] = clock.Now().Unix(), clock.Now().Add(time.Hour).Unix()
		_, err := v.VerifyToken(context.Background(), k.mint(t, c, nil))
		return err
	}
	step := func(name string, k testKey, wantOK bool, wantHits int32) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			err := verify(k)
			if wantOK && err != nil {
				t.Fatalf("VerifyToken with %s: %v", k.kid, err)
			}
			if !wantOK && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("VerifyToken with %s: err = %v, want ErrInvalidToken", k.kid, err)
			}
			if got := is.jwksHits.Load(); got != wantHits {
				t.Fatalf("JWKS fetched %d times, want %d", got, wantHits)
			}
		})
	}

	step("H8 first use fetches the JWKS", k1, true, 1)
	step("H8 cached JWKS reused", k1, true, 1)
	is.publish(k1, k2)
	clock.Advance(time.Second)
	step("H8 unknown kid within the refresh interval is not refetched", k2, false, 1)
	clock.Advance(30 * time.Second)
	step("H8 new kid picked up after the refresh interval", k2, true, 2)
	for i := range 5 {
		step("H8 unknown kid refetched at most once per interval "+string(rune('a'+i)), newES256Key(t, "stranger"), false, 2)
	}
	is.publish(k2)
	clock.Advance(time.Minute)
	step("H8 removed key still trusted until the cache expires", k1, true, 2)
	clock.Advance(5 * time.Minute)
	step("H8 removed key rejected after cache expiry", k1, false, 3)
	step("H8 current key still accepted", k2, true, 3)

	t.Run("H8 issuer down after expiry is a temporary error, not invalid_token", func(t *testing.T) {
		is.setJWKSStatus(http.StatusInternalServerError)
		clock.Advance(6 * time.Minute)
		err := verify(k2)
		if err == nil || errors.Is(err, ErrInvalidToken) {
			t.Fatalf("err = %v, want a temporary error", err)
		}
		hits := is.jwksHits.Load()
		if err := verify(k2); err == nil || errors.Is(err, ErrInvalidToken) {
			t.Fatalf("second err = %v", err)
		}
		if is.jwksHits.Load() != hits {
			t.Fatal("a failed fetch was retried within the refresh interval")
		}
		is.setJWKSStatus(0)
		clock.Advance(31 * time.Second)
		if err := verify(k2); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	})
}

func TestJWKSConcurrentUnknownKidFetchesOnce(t *testing.T) {
	is := newTestIssuer(t)
	k1 := newES256Key(t, "k1")
	is.publish(k1)
	v := is.verifier(t, nil)
	if _, err := v.VerifyToken(context.Background(), k1.mint(t, is.claims(""), nil)); err != nil {
		t.Fatal(err)
	}
	stranger := newES256Key(t, "stranger").mint(t, is.claims(""), nil)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := v.VerifyToken(context.Background(), stranger); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("err = %v", err)
			}
		})
	}
	wg.Wait()
	if got := is.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times for a burst of unknown kids, want 1 (the refresh interval has not passed)", got)
	}
}

func TestJWKSDiscovery(t *testing.T) {
	key := newES256Key(t, "k1")
	jwks, err := json.Marshal(map[string]any{"keys": []any{
		map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"},
		map[string]any{"kty": "EC", "crv": "P-256", "x": "garbage", "y": "garbage", "kid": "k1"},
		map[string]any{"kty": "RSA", "use": "enc", "kid": "k1", "n": "AQAB", "e": "AQAB"},
		map[string]any{"kty": "OKP", "crv": "X25519", "x": "AAAA"},
		jose.JSONWebKey{Key: key.priv.Public(), KeyID: "k1", Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		issuerFor func(base string) string
		routes    func(base, issuer string) map[string]http.HandlerFunc
		jwksURL   bool
		wantErr   string // "" means the token verifies
	}{
		{
			name:      "J4 RFC 8414 metadata, unusable keys skipped",
			issuerFor: func(base string) string { return base },
			routes: func(base, issuer string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{oauth.WellKnownAuthorizationServer: metadata(issuer, base+"/jwks")}
			},
		},
		{
			name:      "J4 OpenID Connect discovery fallback",
			issuerFor: func(base string) string { return base },
			routes: func(base, issuer string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{oauth.WellKnownOpenIDConfiguration: metadata(issuer, base+"/jwks")}
			},
		},
		{
			name:      "J4 issuer with a path, path-inserted metadata",
			issuerFor: func(base string) string { return base + "/tenant1" },
			routes: func(base, issuer string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{oauth.WellKnownAuthorizationServer + "/tenant1": metadata(issuer, base+"/jwks")}
			},
		},
		{
			name:      "J4 issuer with a path, path-appended OpenID metadata",
			issuerFor: func(base string) string { return base + "/tenant1" },
			routes: func(base, issuer string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{"/tenant1" + oauth.WellKnownOpenIDConfiguration: metadata(issuer, base+"/jwks")}
			},
		},
		{
			name:      "G2 metadata naming another issuer is refused",
			issuerFor: func(base string) string { return base },
			routes: func(base, issuer string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{oauth.WellKnownAuthorizationServer: metadata("https://evil.example", base+"/jwks")}
			},
			wantErr: "RFC 8414 §3.3",
		},
		{
			name:      "B3 metadata redirect not followed",
			issuerFor: func(base string) string { return base },
			routes: func(base, issuer string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{oauth.WellKnownAuthorizationServer: func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, base+"/elsewhere", http.StatusFound)
				}, "/elsewhere": metadata(issuer, base+"/jwks")}
			},
			wantErr: "status 302",
		},
		{
			name:      "J4 metadata without jwks_uri",
			issuerFor: func(base string) string { return base },
			routes: func(base, issuer string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{oauth.WellKnownAuthorizationServer: metadata(issuer, "")}
			},
			wantErr: "jwks_uri",
		},
		{
			name:      "H8 explicit JWKS URL skips discovery",
			issuerFor: func(base string) string { return base },
			routes:    func(base, issuer string) map[string]http.HandlerFunc { return nil },
			jwksURL:   true,
		},
		{
			name:      "B7 oversized JWKS refused",
			issuerFor: func(base string) string { return base },
			routes: func(base, issuer string) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{oauth.WellKnownAuthorizationServer: metadata(issuer, base+"/big")}
			},
			wantErr: "larger than",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			defer srv.Close()
			issuer := tt.issuerFor(srv.URL)
			mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(jwks) })
			mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", maxDocumentBytes) + `"}`))
			})
			for path, h := range tt.routes(srv.URL, issuer) {
				mux.HandleFunc("GET "+path, h)
			}
			opts := JWTOptions{Issuer: issuer, Resource: testResource, Client: srv.Client()}
			if tt.jwksURL {
				opts.JWKSURL = srv.URL + "/jwks"
			}
			v, err := NewJWTVerifier(opts)
			if err != nil {
				t.Fatal(err)
			}
			c := map[string]any{"iss": issuer, "aud": testResource, "exp": time.Now().Add(time.Minute).Unix(), "sub": "u", "client_id": "c"}
			_, err = v.VerifyToken(context.Background(), key.mint(t, c, nil))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("VerifyToken: %v", err)
				}
				return
			}
			if err == nil || errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want a temporary error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func metadata(issuer, jwksURI string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(oauth.AuthorizationServerMetadata{Issuer: issuer, JWKSURI: jwksURI, ResponseTypesSupported: []string{"code"}})
	}
}
