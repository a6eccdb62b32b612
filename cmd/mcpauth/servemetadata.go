package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/mcpauth/mcpauth/cimd"
)

const serveMetadataUsage = `Usage: mcpauth client serve-metadata --file client.json [--addr 127.0.0.1:8000] [--rewrite-client-id]

Serves one client ID metadata document on loopback for local development
(the CIMD draft's development service): at http://ADDR/<file name>, read once
at start, never built from request input. Prints the client_id URL on stdout.

The document's client_id must equal that URL byte for byte (CIMD §4.1);
--rewrite-client-id sets it to the URL instead (useful with port 0). The
document is checked with the same rules as mcpauth serve applies and refused
if the server would refuse it. Authorization servers fetch loopback client_ids
only in a development mode (mcpauth serve --dev-allow-loopback). List
http://127.0.0.1/callback in redirect_uris for mcpauth login.`

func runClientServeMetadata(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("client serve-metadata", serveMetadataUsage, stderr)
	file := fs.String("file", "", "the client metadata document (JSON)")
	addr := fs.String("addr", "127.0.0.1:8000", "loopback address to listen on; port 0 picks a free port")
	rewrite := fs.Bool("rewrite-client-id", false, "set the document's client_id to the URL it is served at")
	pos, err := interleaved(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *file == "" {
		fs.Usage()
		return usageError("client serve-metadata takes --file and no arguments")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return usageError("--addr %q: %v", *addr, err)
	}
	if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
		return usageError("--addr %q must be a loopback address such as 127.0.0.1:8000: this is a development tool; publish real documents over https", *addr)
	}
	body, err := os.ReadFile(*file)
	if err != nil {
		return usageError("--file: %v", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	defer ln.Close()
	name := filepath.Base(*file)
	clientID := "http://" + ln.Addr().String() + "/" + name
	if body, err = prepareDocument(body, clientID, *rewrite); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           metadataHandler("/"+name, body, time.Now()),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	fmt.Fprintln(stdout, clientID)
	fmt.Fprintf(stderr, "Serving %s as client_id %s (Ctrl-C stops).\n", *file, clientID)
	fmt.Fprintln(stderr, "Authorization servers must allow loopback client_ids, e.g. mcpauth serve --dev-allow-loopback.")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// prepareDocument checks body as mcpauth serve would for clientID, after
// setting its client_id when rewrite is true, and returns what to serve.
func prepareDocument(body []byte, clientID string, rewrite bool) ([]byte, error) {
	if rewrite {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, usageError("--file is not a JSON object: %v", err)
		}
		id, _ := json.Marshal(clientID)
		doc["client_id"] = id
		var err error
		if body, err = json.MarshalIndent(doc, "", "  "); err != nil {
			return nil, err
		}
		body = append(body, '\n')
	} else {
		var doc struct {
			ClientID any `json:"client_id"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, usageError("--file is not a JSON object: %v", err)
		}
		if doc.ClientID != clientID {
			return nil, usageError("the document's client_id is %q but it is served at %s; they must be equal byte for byte (CIMD §4.1): fix the file or pass --rewrite-client-id", doc.ClientID, clientID)
		}
	}
	r, err := cimd.NewResolver(cimd.Options{AllowLoopback: true})
	if err != nil {
		return nil, err
	}
	id, err := r.ClientID(clientID)
	if err != nil {
		return nil, fmt.Errorf("client_id %s: %w", clientID, err)
	}
	if _, _, err := cimd.ParseDocument(body, id); err != nil {
		return nil, usageError("mcpauth serve would refuse this document: %v", err)
	}
	return body, nil
}

// metadataHandler serves body at path only, with a strong ETag so
// authorization servers can revalidate cheaply (RFC 9110 §8.8.3) and
// no-cache so they do revalidate (RFC 9111 §5.2.2.4).
func metadataHandler(path string, body []byte, modTime time.Time) http.Handler {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path || r.URL.RawQuery != "" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		r.Header.Del("Range") // CIMD needs exactly 200 with the whole document
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		h.Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "", modTime, bytes.NewReader(body))
	})
}
