// Package store declares the records mcpauth persists and the Store
// interface every backend implements (SQLite by default, PostgreSQL for
// replicas). The conformance suite in storetest is the contract: a backend
// is correct when it passes it.
//
// Secrets are never stored: codes, refresh tokens, session ids and DCR
// client secrets are stored as SHA-256 hashes (hex) computed by the caller.
// Single-use values are consumed atomically in the database, so two
// replicas racing on one code or refresh token cannot both win.
// Every method that returns nil has made its write durable.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	ErrNotFound    = errors.New("store: not found")
	ErrConflict    = errors.New("store: already exists")
	ErrAlreadyUsed = errors.New("store: already used") // a code or refresh token consumed before, or its family revoked
)

// User is a local account.
type User struct {
	ID           string // random, stable
	Name         string // unique, case-sensitive
	PasswordHash string // KDF output with parameters (PHC string format)
	CreatedAt    time.Time
}

// Session is a signed-in browser session (login cookie).
type Session struct {
	IDHash    string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AuthRequest is a pending /authorize request between the login and consent
// pages. Data is the serialized request (JSON) owned by the caller.
type AuthRequest struct {
	ID        string
	Data      []byte
	ExpiresAt time.Time
}

// Consent records that a user approved a client for a resource and scopes
// (MCP Security Best Practices §Confused Deputy Problem). Fingerprint is the
// client's metadata fingerprint at approval (CIMD §8.4); a security-relevant
// change asks again.
type Consent struct {
	UserID      string
	ClientID    string
	Resource    string
	Scopes      string // space-separated, sorted
	Fingerprint string
	CreatedAt   time.Time
}

// Code is an authorization code (OAuth 2.1 §4.1.2, §4.1.3, RFC 9207 §2), bound
// to everything it was issued for. FamilyID is the refresh family its tokens
// will belong to, fixed at issue so that a second redemption can revoke them
// (OAuth 2.1 §4.1.3).
type Code struct {
	Hash          string
	ClientID      string
	UserID        string
	RedirectURI   string
	CodeChallenge string
	Resource      string
	Scopes        string
	FamilyID      string
	AuthTime      time.Time
	ExpiresAt     time.Time
	UsedAt        time.Time // zero until redeemed
}

// Family is one grant's chain of rotating refresh tokens (OAuth 2.1 §4.3.1,
// RFC 9700 §4.14.2). Access tokens carry its ID; revoking it makes them
// inactive at introspection.
type Family struct {
	ID          string
	ClientID    string
	UserID      string
	Resource    string
	Scopes      string
	Fingerprint string // client metadata fingerprint at grant
	KeyID       string // private_key_jwt: the client key used at grant ("" for public clients)
	CreatedAt   time.Time
	ExpiresAt   time.Time // absolute lifetime
	RevokedAt   time.Time // zero unless revoked
}

// RefreshToken is one link of a family. UsedAt is set when it is rotated.
type RefreshToken struct {
	Hash      string
	FamilyID  string
	CreatedAt time.Time
	ExpiresAt time.Time // idle lifetime, capped by the family's absolute lifetime
	UsedAt    time.Time
}

// SeenOK is ClientSeen.LastResult for a document that was accepted.
const SeenOK = "ok"

// ClientSeen is what the server knows of a CIMD client (mcpauth clients list).
type ClientSeen struct {
	ClientID    string
	FirstSeen   time.Time
	LastSeen    time.Time
	LastResult  string // SeenOK, or the rejection reason code
	Tier        string
	Fingerprint string
	Users       int // distinct users with a consent (filled by ListClients)
}

// Block is an operator's block rule: an exact client_id URL, a host or *.domain.
type Block struct {
	Pattern   string
	Reason    string
	CreatedAt time.Time
}

// DCRClient is a dynamically registered client (RFC 7591). Its ID
// never starts with https:// (CIMD §7.1).
type DCRClient struct {
	ClientID     string
	SecretHash   string // "" for public clients
	Metadata     []byte // validated registration metadata (JSON)
	MetadataHash string // for deduplication of identical registrations from one source
	SourceIP     string
	CreatedAt    time.Time
	LastUsedAt   time.Time // zero until first used at /authorize or /token
	ExpiresAt    time.Time // unused registrations are collected after this
}

// SigningKey is a JWT signing key (RFC 9068 §2). PrivateKey is PKCS#8 DER.
type SigningKey struct {
	ID         string // kid
	Algorithm  string // "ES256"
	PrivateKey []byte
	CreatedAt  time.Time
	ActiveAt   time.Time // signs from this time (keys are published before they sign)
	RetireAt   time.Time // stops signing; still published until ExpireAt
	ExpireAt   time.Time // removed from the JWKS after this
}

// KeyMaterial is a change of one signing key's stored PrivateKey bytes
// (a re-encryption, see token.Rewrap): Old as stored now, New to store.
type KeyMaterial struct {
	ID       string
	Old, New []byte
}

// CIMDEntry is a client metadata document in the cache that replicas share
// (MCP SEP-991 §Best Practices: one fetch per freshness lifetime for a
// cluster): the exported fields of cimd.Entry, the validated body and the
// HTTP metadata for RFC 9111 §4.2, §4.3. Readers re-validate Body.
type CIMDEntry struct {
	ClientID     string
	Body         []byte
	ETag         string
	LastModified string
	CacheControl string
	Expires      string
	FetchedAt    time.Time
	FreshUntil   time.Time // used without a fetch until then
	StaleUntil   time.Time // served only while the client's host is down, until then; collected after
	Fingerprint  string
}

// Store is the persistence the authorization server needs. Implementations
// are safe for concurrent use, also from several processes sharing one
// database.
type Store interface {
	// Users.
	CreateUser(ctx context.Context, u User) error // ErrConflict on a taken name
	GetUserByName(ctx context.Context, name string) (User, error)
	GetUser(ctx context.Context, id string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	DeleteUser(ctx context.Context, name string) error // also deletes the user's sessions, consents, and revokes families

	// RateHit counts one event for key in the fixed window containing now and
	// reports the count in that window including this event (login and DCR limits).
	RateHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
	// RateUndo takes back one event RateHit counted for key in the window
	// containing now (a sign-in that succeeded does not count toward the
	// brute-force limits).
	RateUndo(ctx context.Context, key string, window time.Duration, now time.Time) error

	// Sessions.
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, idHash string, now time.Time) (Session, error) // ErrNotFound when expired
	DeleteSession(ctx context.Context, idHash string) error

	// Pending authorization requests.
	PutAuthRequest(ctx context.Context, r AuthRequest) error
	GetAuthRequest(ctx context.Context, id string, now time.Time) (AuthRequest, error)
	// ConsumeAuthRequest deletes and returns it atomically (a replayed consent POST gets ErrNotFound).
	ConsumeAuthRequest(ctx context.Context, id string, now time.Time) (AuthRequest, error)

	// Consents.
	PutConsent(ctx context.Context, c Consent) error // replaces (user, client, resource)
	GetConsent(ctx context.Context, userID, clientID, resource string) (Consent, error)
	ListConsents(ctx context.Context, userID string) ([]Consent, error)
	// RevokeClient deletes the user's consents for the client and revokes its families.
	RevokeClient(ctx context.Context, userID, clientID string, now time.Time) error

	// Codes and tokens.
	CreateCode(ctx context.Context, c Code) error
	GetCode(ctx context.Context, hash string) (Code, error)
	// RedeemCode marks the code used (only if unused and unexpired) and, in
	// the same transaction, creates the family and its first refresh token
	// (rt may be nil when no refresh token is issued). ErrAlreadyUsed if the
	// code was redeemed before (even if expired since); ErrNotFound if
	// unknown or expired; then nothing is written. Of concurrent calls for
	// one code exactly one succeeds.
	RedeemCode(ctx context.Context, hash string, now time.Time, f Family, rt *RefreshToken) error
	GetRefreshToken(ctx context.Context, hash string) (RefreshToken, Family, error)
	// RotateRefreshToken marks old used and inserts next atomically;
	// ErrAlreadyUsed when old was used before or its family is revoked (the
	// caller then revokes the family), ErrNotFound when it or its family is
	// unknown or expired; then nothing is written. Of concurrent calls for
	// one token exactly one succeeds.
	RotateRefreshToken(ctx context.Context, oldHash string, now time.Time, next RefreshToken) error
	GetFamily(ctx context.Context, id string) (Family, error)
	// FamilyRevoked reports whether the family is revoked (ErrNotFound if
	// absent): the one thing an access token's introspection needs, read
	// without the rest of the row.
	FamilyRevoked(ctx context.Context, id string) (bool, error)
	RevokeFamily(ctx context.Context, id string, now time.Time) error

	// CIMD clients seen and operator blocks.
	RecordClientSeen(ctx context.Context, c ClientSeen) error // upsert; FirstSeen kept from the first call
	// UpdateClientSeen updates a client recorded before (as
	// RecordClientSeen) and does nothing for any other: a URL whose
	// document was never accepted is not a client, and recording each one
	// would let anyone grow the table.
	UpdateClientSeen(ctx context.Context, c ClientSeen) error
	ListClientsSeen(ctx context.Context) ([]ClientSeen, error)
	PutBlock(ctx context.Context, b Block) error           // upsert by pattern
	DeleteBlock(ctx context.Context, pattern string) error // ErrNotFound if absent
	ListBlocks(ctx context.Context) ([]Block, error)

	// Dynamic client registration.
	CreateDCRClient(ctx context.Context, c DCRClient) error
	GetDCRClient(ctx context.Context, clientID string) (DCRClient, error)
	FindDCRClient(ctx context.Context, metadataHash, sourceIP string, now time.Time) (DCRClient, error)
	TouchDCRClient(ctx context.Context, clientID string, now time.Time) error
	CountDCRClients(ctx context.Context) (int, error)

	// Signing keys.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	ListSigningKeys(ctx context.Context) ([]SigningKey, error) // ordered by ActiveAt
	UpdateSigningKey(ctx context.Context, k SigningKey) error

	// RecordJTI stores a client assertion's jti until expiresAt; ErrConflict on
	// replay (RFC 7523 §3, CIMD §8.2).
	RecordJTI(ctx context.Context, clientID, jti string, expiresAt time.Time) error

	// Shared CIMD document cache (RFC 9111 shared cache, MCP SEP-991 §Best
	// Practices).
	GetCIMDEntry(ctx context.Context, clientID string) (CIMDEntry, error) // ErrNotFound if absent
	// PutCIMDEntry replaces the entry for e.ClientID and ends any fetch lease on it.
	PutCIMDEntry(ctx context.Context, e CIMDEntry) error
	// DeleteCIMDEntry removes the entry and ends any fetch lease on it;
	// deleting a missing entry is not an error.
	DeleteCIMDEntry(ctx context.Context, clientID string) error
	// LeaseCIMDFetch claims the fetch of clientID's document for holder
	// until the given time, unless another holder's claim is unexpired at
	// now (a holder may renew its own). It returns the claim in force
	// (holder "" if none), so that one replica fetches while the others
	// wait for its PutCIMDEntry or DeleteCIMDEntry, which end the claim.
	LeaseCIMDFetch(ctx context.Context, clientID, holder string, now, until time.Time) (string, time.Time, error)

	// DeleteExpired collects expired codes, sessions, auth requests, refresh
	// tokens and families past their lifetime, jti records, rate counters,
	// unused DCR clients past ExpiresAt, CIMD entries past StaleUntil and
	// ended fetch leases. It returns how many rows went.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)

	// Ping reports whether the database answers (readiness).
	Ping(ctx context.Context) error
	Close() error
}
