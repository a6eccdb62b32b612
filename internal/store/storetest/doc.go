// Package storetest is the conformance suite for store.Store backends:
// a backend is correct when Run passes against it. Every backend (SQLite,
// PostgreSQL) runs the same suite from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// The suite pins down what the store.Store documentation leaves open:
//
//   - Expiry: a record is expired at now when now is not before its
//     ExpiresAt, so at now == ExpiresAt it is already gone.
//   - Times keep at least millisecond precision; the suite compares times
//     after truncating both sides to the millisecond (time.Truncate, not
//     rounding), and its inputs carry nanoseconds so that a backend that
//     keeps only seconds fails. Times come back in UTC, and a zero
//     time.Time comes back zero.
//   - Lists are ordered: users by Name; consents by ClientID, then
//     Resource; clients seen by ClientID; blocks by Pattern; signing keys
//     by ActiveAt, then ID. Strings compare byte by byte, whatever the
//     database's locale (PostgreSQL: COLLATE "C"). An empty list may be
//     nil.
//   - RateHit windows are aligned to the Unix epoch, [k*w, (k+1)*w), and
//     one key counted over two window lengths has two counters. A window
//     shorter than a microsecond is an error.
//   - Single use: RedeemCode, RotateRefreshToken and ConsumeAuthRequest
//     succeed for exactly one of any number of concurrent callers. A
//     redeemed code or rotated refresh token stays ErrAlreadyUsed after it
//     expires, until DeleteExpired collects it. A failed call writes
//     nothing. RedeemCode requires f.ID == Code.FamilyID and rt.FamilyID ==
//     f.ID; RotateRefreshToken requires next.FamilyID to be the old
//     token's family; otherwise they fail with an error that is none of
//     the sentinels.
//   - DeleteUser fails with ErrNotFound for an unknown name. It deletes
//     the user's sessions, consents and codes and revokes the user's
//     families. RevokeClient deletes the user's consents for the client
//     and the client's unredeemed codes for the user, and revokes the
//     user's families of the client at now; it is not an error when
//     nothing matches. RevokeFamily keeps the first RevokedAt and fails
//     with ErrNotFound for an unknown family.
//   - DeleteSession of an unknown session is not an error. PutAuthRequest
//     replaces a request with the same ID. RecordClientSeen uses LastSeen
//     as FirstSeen when the first call has none.
//   - UpdateSigningKey changes ActiveAt, RetireAt and ExpireAt only.
//   - RecordJTI refuses a stored pair (ErrConflict) until DeleteExpired
//     has collected it; the same jti for another client is accepted.
//   - FindDCRClient returns the newest live registration (used at least
//     once, or unexpired) with the metadata hash and source IP.
//     CountDCRClients counts every stored registration.
//   - CIMD cache: GetCIMDEntry returns an entry stale or not, until
//     DeleteExpired collects it at StaleUntil. LeaseCIMDFetch grants one
//     holder at a time; a claim ends at its end time (not before, at now
//     == end it is over) or at PutCIMDEntry or DeleteCIMDEntry for the
//     client, and its holder may renew it. Of racing claimants exactly one
//     wins and all see the same holder.
//   - DeleteExpired returns exactly the number of rows it deleted. Refresh
//     tokens go by their own ExpiresAt, which callers cap at their
//     family's; the suite's tokens never outlive their family.
//
// Each subtest opens a fresh, empty store; open must arrange for Close
// with t.Cleanup. The suite uses the network not at all beyond what open
// does, and asserts no timings.
package storetest
