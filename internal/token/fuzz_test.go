package token

import (
	"strings"
	"testing"
	"time"
)

// FuzzVerifyAccessToken feeds arbitrary strings to the access token parser.
// It must never panic, and it may accept only the one token the test's key
// signed: anything else would be a forgery.
func FuzzVerifyAccessToken(f *testing.F) {
	clk := newFakeClock()
	k := loadKeys(f, newFakeKeyStore(), clk, KeyOptions{})
	now := clk.Now()
	good, err := k.SignAccessToken(claimsAt(now, 10*time.Minute))
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Add(good + ".")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := k.VerifyAccessToken(tok, now)
		if err == nil && tok != good {
			t.Fatalf("accepted a token the key never signed: %q (claims %+v)", tok, c)
		}
	})
}
