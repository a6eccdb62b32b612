package authserver

import (
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
)

// maxRecentCodes bounds the codes codeCache keeps: a few seconds' worth of
// authorizations at full speed.
const maxRecentCodes = 20000

// codeCache keeps the authorization codes this process issued until they
// are redeemed, so that the token endpoint usually reads a code from
// memory instead of the database. It is only a copy: single use is still
// decided by the store's conditional update at redemption (OAuth 2.1 §4.1.3),
// so a code redeemed by another replica, revoked from the account page or
// deleted with its user fails there exactly as it would after a database
// read. A code issued by another replica is read from the database.
type codeCache struct {
	mu        sync.Mutex
	codes     map[string]store.Code // by hash
	nextPrune time.Time             // a full cache is swept at most once a second
}

// put remembers c. When the cache is full it drops expired codes (at most
// once a second, so that a flood of unredeemed codes cannot make every
// authorization sweep the whole cache), and if it is still full it does
// not keep c (the database has it).
func (cc *codeCache) put(c store.Code, now time.Time) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.codes == nil {
		cc.codes = make(map[string]store.Code)
	}
	if len(cc.codes) >= maxRecentCodes {
		if now.Before(cc.nextPrune) {
			return
		}
		cc.nextPrune = now.Add(time.Second)
		for h, old := range cc.codes {
			if !now.Before(old.ExpiresAt) {
				delete(cc.codes, h)
			}
		}
		if len(cc.codes) >= maxRecentCodes {
			return
		}
	}
	cc.codes[c.Hash] = c
}

// take returns the code with this hash and forgets it: a code is redeemed
// at most once, and a second presentation goes to the database, which
// knows it was used.
func (cc *codeCache) take(hash string) (store.Code, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	c, ok := cc.codes[hash]
	if ok {
		delete(cc.codes, hash)
	}
	return c, ok
}
