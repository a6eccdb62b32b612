package authserver

// RFC 7591 Dynamic Client Registration, kept for MCP clients
// that predate client ID metadata documents. Only served when
// Options.EnableDCR is set.
//
// Not supported: software statements (RFC 7591 §2.3; they are ignored),
// the client configuration endpoint of RFC 7592, and registration access
// tokens.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
)

// Registration limits (RFC 7591 §5: an open registration endpoint needs rate
// limits, expiry of unused clients and a body size limit).
const (
	dcrMaxBody      = 16 << 10       // request body bytes
	dcrWindow       = time.Hour      // rate limit window
	dcrUnusedExpiry = 24 * time.Hour // a registration never used is collected after this
	dcrIDPrefix     = "mca_dcr_"     // never https:// (CIMD §7.1)
	dcrSecretPrefix = "mca_s_"
)

// dcrLimits are the registration budgets.
type dcrLimits struct {
	perAddress int // registrations per source address and window
	global     int // registrations per window, all sources
	maxClients int // stored registrations, used or not
}

func defaultDCRLimits() dcrLimits {
	return dcrLimits{perAddress: 20, global: 1000, maxClients: 100_000}
}

// dcrValidationID is the client_id a registration is validated under: a
// registration must meet every rule a client metadata document meets
// (RFC 7591 §2), so it is checked by cimd.ParseDocument as the document it
// would be, with this placeholder for the client_id the server assigns.
const dcrValidationID = "https://registration.invalid/client"

// registration is the RFC 7591 §3.2.1 response: the registered metadata
// (the validated document, with the client_id we assigned and the
// authentication method the client asked for) plus the issued credentials.
type registration struct {
	*cimd.Document
	ClientIDIssuedAt      int64  `json:"client_id_issued_at"`
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"` // REQUIRED with a secret; 0: never
}

// handleRegister is the registration endpoint (RFC 7591 §3).
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	reg, status, err := s.register(w, r)
	if err != nil {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(int(dcrWindow/time.Second)))
		}
		s.writeJSONErrorStatus(w, r, status, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(reg)
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) (*registration, int, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return nil, http.StatusBadRequest, oauth.NewError(oauth.InvalidClientMetadata, "Send the client metadata as application/json (RFC 7591 §3.1).")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, dcrMaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, http.StatusRequestEntityTooLarge, oauth.NewError(oauth.InvalidClientMetadata, "The client metadata is larger than %d bytes.", dcrMaxBody)
	case err != nil:
		return nil, http.StatusBadRequest, bodyError(err, "The client metadata could not be read.")
	}
	doc, method, err := validateRegistration(body)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	ctx := r.Context()
	now := s.now()
	ip := s.clientIP(r)
	metadata, err := json.Marshal(doc) // client_id is still empty: the same request hashes the same
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	hash := token.Digest(metadata)

	// RFC 7591 §5: an identical public registration from the same source gets
	// the client it registered before. A secret cannot be handed out
	// twice, so confidential clients always get a new registration.
	if method == "none" {
		prev, err := s.store.FindDCRClient(ctx, hash, ip, now)
		if err == nil {
			return registrationOf(prev, "")
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, http.StatusInternalServerError, err
		}
	}
	if status, err := s.registrationAllowed(r, ip, now); err != nil {
		return nil, status, err
	}

	doc.ClientID = dcrIDPrefix + token.NewID()
	rec := store.DCRClient{ClientID: doc.ClientID, MetadataHash: hash, SourceIP: ip, CreatedAt: now, ExpiresAt: now.Add(dcrUnusedExpiry)}
	secret := ""
	if method != "none" && method != "private_key_jwt" {
		secret, rec.SecretHash = token.NewOpaque(dcrSecretPrefix)
	}
	if rec.Metadata, err = json.Marshal(doc); err != nil {
		return nil, http.StatusInternalServerError, err
	}
	if err := s.store.CreateDCRClient(ctx, rec); err != nil {
		return nil, http.StatusInternalServerError, err
	}
	s.log.Info("client registered", "client_id", rec.ClientID, "remote", ip, "auth_method", method)
	return registrationOf(rec, secret)
}

// registrationAllowed applies the registration budgets (RFC 7591 §5): per
// source address and global per window, and a cap on stored clients.
func (s *Server) registrationAllowed(r *http.Request, ip string, now time.Time) (int, error) {
	ctx := r.Context()
	n, err := s.store.CountDCRClients(ctx)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	if n >= s.dcr.maxClients {
		return http.StatusServiceUnavailable, oauth.NewError(oauth.TemporarilyUnavailable, "Registration is closed: too many registered clients. Use a client ID metadata document instead.")
	}
	perIP, err := s.store.RateHit(ctx, "dcr:ip:"+ip, dcrWindow, now)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	all, err := s.store.RateHit(ctx, "dcr:all", dcrWindow, now)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	if perIP > s.dcr.perAddress || all > s.dcr.global {
		return http.StatusTooManyRequests, oauth.NewError(oauth.TemporarilyUnavailable, "Too many registrations; try again in an hour, or use a client ID metadata document.")
	}
	return 0, nil
}

// registrationOf is the RFC 7591 §3.2.1 response for a stored registration.
func registrationOf(rec store.DCRClient, secret string) (*registration, int, error) {
	d, err := dcrDocument(rec)
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	reg := &registration{Document: d, ClientIDIssuedAt: rec.CreatedAt.Unix(), ClientSecret: secret}
	if secret != "" {
		never := int64(0)
		reg.ClientSecretExpiresAt = &never
	}
	return reg, http.StatusCreated, nil
}

// dcrDocument decodes a stored registration's metadata.
func dcrDocument(rec store.DCRClient) (*cimd.Document, error) {
	var d cimd.Document
	if err := json.Unmarshal(rec.Metadata, &d); err != nil {
		return nil, fmt.Errorf("dcr client %q: stored metadata: %w", rec.ClientID, err)
	}
	d.ClientID = rec.ClientID
	return &d, nil
}

// sharedSecretMethods are the RFC 7591 §2 methods a registered client may
// choose besides none and private_key_jwt: the server then issues a secret.
func sharedSecretMethods() [2]string { return [...]string{"client_secret_basic", "client_secret_post"} }

// validateRegistration checks RFC 7591 client metadata with the rules of a
// client metadata document (RFC 7591 §2 via cimd.ParseDocument: redirect URIs
// per CIMD §4.2, RFC 6749 §3.1.2, grant and response types per RFC 7591 §2,
// RFC 9700 §2.1.2, §2.4, public keys only, https display URIs,
// application_type) and returns the registered metadata and the authentication
// method. A client_id, client_secret or client_secret_expires_at in the request
// is ignored: the server assigns them. Errors are invalid_redirect_uri or
// invalid_client_metadata (RFC 7591 §3.2.2) saying what to fix.
func validateRegistration(body []byte) (*cimd.Document, string, error) {
	id, err := cimd.ParseClientID(dcrValidationID)
	if err != nil {
		return nil, "", err
	}
	// Malformed JSON and duplicate members are reported on the body as
	// sent: decoding it into a map below would keep the last duplicate.
	if _, _, err := cimd.ParseDocument(body, id); err != nil {
		var ce *cimd.Error
		if !errors.As(err, &ce) || ce.Has(cimd.ReasonInvalidJSON) || ce.Has(cimd.ReasonNotJSONObject) || ce.Has(cimd.ReasonDuplicateKey) {
			return nil, "", registrationError(err)
		}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, "", oauth.NewError(oauth.InvalidClientMetadata, "The request body must be a JSON object of client metadata (RFC 7591 §2).")
	}
	method := "none"
	if raw, ok := m["token_endpoint_auth_method"]; ok {
		if err := json.Unmarshal(raw, &method); err != nil {
			return nil, "", oauth.NewError(oauth.InvalidClientMetadata, "token_endpoint_auth_method must be a string.")
		}
	}
	secret := method == sharedSecretMethods()[0] || method == sharedSecretMethods()[1]
	for _, k := range []string{"client_id", "client_secret", "client_secret_expires_at"} {
		delete(m, k)
	}
	m["client_id"], _ = json.Marshal(id.String())
	if secret {
		m["token_endpoint_auth_method"] = json.RawMessage(`"none"`)
	}
	edited, err := json.Marshal(m)
	if err != nil {
		return nil, "", err
	}
	doc, _, err := cimd.ParseDocument(edited, id)
	if err != nil {
		return nil, "", registrationError(err)
	}
	if err := oauth.CheckScope(doc.Scope); err != nil {
		return nil, "", oauth.NewError(oauth.InvalidClientMetadata, "scope is malformed: %v.", err)
	}
	if secret {
		doc.TokenEndpointAuthMethod = method
	}
	doc.ClientID = ""
	return doc, doc.TokenEndpointAuthMethod, nil
}

// registrationError turns a cimd rejection into an RFC 7591 §3.2.2 error
// whose description is the first problem's fix.
func registrationError(err error) error {
	var ce *cimd.Error
	if !errors.As(err, &ce) {
		return err
	}
	code := oauth.InvalidClientMetadata
	if ce.Reason == cimd.ReasonRedirectURI || ce.Reason == cimd.ReasonRedirectURIs {
		code = oauth.InvalidRedirectURI
	}
	return &oauth.Error{Code: code, Description: ce.Error()}
}
