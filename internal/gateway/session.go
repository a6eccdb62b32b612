// This file binds MCP sessions (MCP 2025-11-25 "Session Management") to the
// identity that created them, as the MCP Security Best Practices ask
// ("Session Hijacking": bind session IDs to user-specific information).

package gateway

import (
	"container/list"
	"sync"
	"time"
)

// sessions maps an upstream's Mcp-Session-Id to the identity (issuer,
// subject, client) whose request received it, in a bounded LRU table with an
// idle timeout. A request carrying a session ID passes only for the same
// identity; unknown IDs are refused, so a session cannot be borrowed by
// guessing or learning its ID. Safe for concurrent use.
type sessions struct {
	mu    sync.Mutex
	idle  time.Duration
	limit int
	now   func() time.Time
	byID  map[string]*list.Element
	lru   list.List // of *binding, most recently used first
}

type binding struct {
	id, owner string
	lastUsed  time.Time
}

func newSessions(idle time.Duration, limit int, now func() time.Time) *sessions {
	return &sessions{idle: idle, limit: limit, now: now, byID: make(map[string]*list.Element)}
}

// allowed reports whether owner may use session id, and marks it used.
func (s *sessions) allowed(id, owner string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok {
		return false
	}
	b := e.Value.(*binding)
	now := s.now()
	if now.Sub(b.lastUsed) > s.idle {
		s.remove(e)
		return false
	}
	if b.owner != owner {
		return false
	}
	b.lastUsed = now
	s.lru.MoveToFront(e)
	return true
}

// bind records that id belongs to owner. It reports false, changing
// nothing, when id is already bound to another owner.
func (s *sessions) bind(id, owner string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if e, ok := s.byID[id]; ok {
		b := e.Value.(*binding)
		if b.owner != owner && now.Sub(b.lastUsed) <= s.idle {
			return false
		}
		b.owner, b.lastUsed = owner, now
		s.lru.MoveToFront(e)
		return true
	}
	for s.lru.Len() >= s.limit {
		s.remove(s.lru.Back())
	}
	s.byID[id] = s.lru.PushFront(&binding{id: id, owner: owner, lastUsed: now})
	return true
}

// forget removes id, after the session ended (DELETE) or the upstream no
// longer knows it (404).
func (s *sessions) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byID[id]; ok {
		s.remove(e)
	}
}

func (s *sessions) remove(e *list.Element) {
	delete(s.byID, e.Value.(*binding).id)
	s.lru.Remove(e)
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}
