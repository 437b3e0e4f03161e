package ui

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The suppression-list API, /api/v1/blocks: the operations of `posthorn
// blocks` for programs (issue 7). It is served on the console's listener
// when both Options.Blocks and Options.Tokens are set.
//
// Every request carries "Authorization: Bearer <token>" (RFC 6750 §2.1);
// tokens are made with `posthorn token add NAME`. The session cookie does
// not authorise the API: a browser sends the cookie with any request,
// also one a page of another site makes it send, while a bearer token is
// only sent by a program that was given it. So the API needs no form
// token, and the session's CSRF check is not applied to it.
//
//	GET    /api/v1/blocks?address=&since=&until=&removed=&page=&rows=
//	POST   /api/v1/blocks                   {"address", "reason", "at" | "now", "watchDays"}
//	DELETE /api/v1/blocks/{address}         lift a registered entry (a `deleted` record)
//	POST   /api/v1/blocks/{address}/cancel  drop a scheduled entry (no record)
//
// Answers are JSON; errors are {"error": {"code", "message", "field"}}.

// Tokens looks up API tokens by their hash (APITokenHash); the token itself
// is never stored.
type Tokens interface {
	// APIToken returns the token's name, whether it was revoked and when
	// it was last used (zero: never); ok is false for an unknown hash.
	APIToken(ctx context.Context, hash string) (name string, revoked bool, used time.Time, ok bool, err error)
	// TouchAPIToken records that the token was used at at.
	TouchAPIToken(ctx context.Context, hash string, at time.Time) error
}

// apiTokenPrefix marks Posthorn's tokens, so that one pasted into a log, a
// ticket or a repository can be recognised by people and secret scanners.
const apiTokenPrefix = "ph_"

// apiTokenLen is the length of a token: the prefix and 32 random bytes in
// hex. Hex rather than base64 so that a double click selects all of it.
const apiTokenLen = len(apiTokenPrefix) + 64

// NewAPIToken makes a token and the hash the store keeps of it.
func NewAPIToken() (token, hash string) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand documentation, Go 1.24+)
	token = apiTokenPrefix + hex.EncodeToString(b)
	return token, APITokenHash(token)
}

// APITokenHash is what the store keeps of a token: its SHA-256 in hex.
// A fast hash is enough for 32 random bytes (see sqlite/tokens.go), and it
// lets a request's token be found by an index lookup.
func APITokenHash(token string) string { return sessionID(token) }

// wellFormedToken says whether s has the shape of a token, before it is
// looked up.
func wellFormedToken(s string) bool {
	if len(s) != apiTokenLen || !strings.HasPrefix(s, apiTokenPrefix) {
		return false
	}
	for i := len(apiTokenPrefix); i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// CheckTokenName checks a token name for `posthorn token add`: the rules
// of user names, which it is listed beside.
func CheckTokenName(name string) error {
	if err := CheckUserName(name); err != nil {
		return errors.New(strings.Replace(err.Error(), "user name", "token name", 1))
	}
	return nil
}

// API limits.
const (
	apiPath = "/api/v1/blocks"
	// maxAPIBody bounds a request body; an add request is well under 1 KiB.
	maxAPIBody = 64 << 10
	apiMaxRows = 100
	// apiMaxPage keeps the offset (page-1)*rows far from overflowing and
	// is more pages than any list will have.
	apiMaxPage = 1_000_000
	// apiMaxAddress bounds an address in a path, a body or a filter; the
	// block service refuses anything over RFC 5321's 254 octets with a
	// reason, this only keeps absurd input out of messages.
	apiMaxAddress = 1024
	apiMaxWatch   = 3650 // as [blocks] watch_days
)

// apiRoutes are the API's routes, added to the console's table by routes().
// The last one answers every other /api/ request with a JSON 404 or 405,
// after the token check, so that nothing is learnt without a token.
func (s *Server) apiRoutes() []route {
	return []route{
		{"GET " + apiPath, bearer, s.apiList},
		{"POST " + apiPath, bearer, s.apiAdd},
		{"DELETE " + apiPath + "/{address}", bearer, s.apiDelete},
		{"POST " + apiPath + "/{address}/cancel", bearer, s.apiCancel},
		{"/api/", bearer, s.apiNoRoute},
	}
}

// apiError is the body of an error answer.
type apiError struct {
	status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func badRequest(field, format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Code: "invalid_request", Field: field, Message: fmt.Sprintf(format, a...)}
}

// writeJSON sends v with status. Answers are never cached: they hold
// addresses and change with every write.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// Answers are read by programs and people, not put into pages
	// (nosniff stops a browser from taking them for HTML): no need for
	// \u003c in place of "<".
	enc.SetEscapeHTML(false)
	// An error here is the client gone; there is no one left to tell.
	_ = enc.Encode(v)
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]*apiError{"error": e})
}

// apiServerError logs err and answers 500 without its text, which may hold
// paths or SQL.
func (s *Server) apiServerError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeAPIError(w, &apiError{status: http.StatusInternalServerError, Code: "internal",
		Message: "internal server error: see the posthorn log"})
}

// apiTokenKey is the context key of the authenticated token's name.
type apiTokenKey struct{}

func tokenName(ctx context.Context) string {
	name, _ := ctx.Value(apiTokenKey{}).(string)
	return name
}

// Token rate limit: as for logins (session.go), the 11th failure within a
// minute from one client is refused, here without looking the token up.
// The failures are counted under their own key, so that a script with a
// wrong token does not lock its host out of the console's login, and the
// check is not serialised as logins are: a token is 256 random bits, and a
// few guesses more that slip through in parallel change nothing.
func apiFailureKey(remoteAddr string) string { return "api:" + clientKey(remoteAddr) }

// apiAuth checks the bearer token and runs next with the token's name in
// the context.
func (s *Server) apiAuth(w http.ResponseWriter, r *http.Request, next http.HandlerFunc) {
	ctx := r.Context()
	challenge := `Bearer realm="posthorn"`
	refuse := func(msg string) {
		w.Header().Set("WWW-Authenticate", challenge)
		writeAPIError(w, &apiError{status: http.StatusUnauthorized, Code: "unauthorized", Message: msg})
	}
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		refuse(`no token: send "Authorization: Bearer <token>" (posthorn token add NAME makes one)`)
		return
	}
	now := s.now()
	key := apiFailureKey(r.RemoteAddr)
	n, err := s.store.LoginFailures(ctx, key, now.Add(-loginWindow))
	if err != nil {
		s.apiServerError(w, r, err)
		return
	}
	if n >= loginMaxFailures {
		w.Header().Set("Retry-After", strconv.Itoa(int(loginWindow/time.Second)))
		writeAPIError(w, &apiError{status: http.StatusTooManyRequests, Code: "rate_limited",
			Message: "too many requests with an unknown token from this address; try again in a minute"})
		return
	}
	// RFC 6750 §3.1: a token that is presented but not accepted is
	// "invalid_token".
	challenge += `, error="invalid_token"`
	fail := func(msg string) {
		if err := s.store.AddLoginFailure(ctx, []string{key}, now); err != nil {
			s.log.Error("api: record failed token", "err", err)
		}
		// The token is never logged: it may be a real one sent to the
		// wrong place, or a typo of one.
		s.log.Warn("api: request with an unknown token refused", "path", r.URL.Path, "addr", r.RemoteAddr)
		refuse(msg)
	}
	// The auth scheme is case-insensitive (RFC 9110 §11.1).
	scheme, tok, _ := strings.Cut(values[0], " ")
	tok = strings.TrimLeft(tok, " ")
	switch {
	case len(values) > 1:
		fail("more than one Authorization header")
		return
	case !strings.EqualFold(scheme, "Bearer"):
		fail(`wrong authorization scheme: send "Authorization: Bearer <token>"`)
		return
	case !wellFormedToken(tok):
		fail("malformed token: a token is ph_ and 64 hex digits")
		return
	}
	// Looking the token up by its SHA-256 leaks through timing at most
	// something about the hash, never about the token, so the lookup
	// needs no constant-time comparison.
	hash := APITokenHash(tok)
	name, revoked, used, ok, err := s.tokens.APIToken(ctx, hash)
	if err != nil {
		s.apiServerError(w, r, err)
		return
	}
	if !ok {
		fail("unknown token")
		return
	}
	if revoked {
		s.log.Warn("api: request with a revoked token refused", "token", name, "path", r.URL.Path, "addr", r.RemoteAddr)
		writeAPIError(w, &apiError{status: http.StatusForbidden, Code: "forbidden",
			Message: "this token was revoked; ask for a new one (posthorn token add NAME)"})
		return
	}
	// As for sessions, the last use is written at most once a minute, so
	// that a busy client does not compete with the log reader for the
	// one writer connection.
	if now.Sub(used) >= touchEvery {
		if err := s.tokens.TouchAPIToken(ctx, hash, now); err != nil {
			s.log.Error("api: touch token", "token", name, "err", err)
		}
	}
	next(w, r.WithContext(context.WithValue(ctx, apiTokenKey{}, name)))
}

// apiNoRoute answers a request for an API path or method that does not
// exist.
func (s *Server) apiNoRoute(w http.ResponseWriter, r *http.Request) {
	var allow string
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), apiPath)
	if ok {
		parts := strings.Split(rest, "/")
		switch {
		case rest == "":
			allow = "GET, HEAD, POST"
		case len(parts) == 2 && parts[1] != "":
			allow = "DELETE"
		case len(parts) == 3 && parts[1] != "" && parts[2] == "cancel":
			allow = "POST"
		}
	}
	if allow == "" {
		writeAPIError(w, &apiError{status: http.StatusNotFound, Code: "not_found",
			Message: "no such API endpoint; the API is " + apiPath})
		return
	}
	w.Header().Set("Allow", allow)
	writeAPIError(w, &apiError{status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Message: fmt.Sprintf("%s is not allowed here; allowed: %s", r.Method, allow)})
}

// apiBlock is an entry as the API shows it: the columns of `posthorn
// blocks export`, with instants in RFC 3339 in the suppression list's
// zone, null when not (yet).
type apiBlock struct {
	Address     string  `json:"address"`
	Reason      string  `json:"reason"`
	Status      string  `json:"status"`
	Occurrences int     `json:"occurrences"`
	Created     *string `json:"created"`
	Effective   *string `json:"effective"`
	Expires     *string `json:"expires"`
	Removed     *string `json:"removed"`
}

func toAPIBlock(e BlockEntry, loc *time.Location) apiBlock {
	at := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		s := t.In(loc).Format(time.RFC3339)
		return &s
	}
	return apiBlock{Address: e.Address, Reason: e.Reason, Status: e.Status, Occurrences: e.Occurrences,
		Created: at(e.Created), Effective: at(e.Scheduled), Expires: at(e.Expires), Removed: at(e.Removed)}
}

// apiList is GET /api/v1/blocks.
type apiListAnswer struct {
	Total  int        `json:"total"`
	Page   int        `json:"page"`
	Rows   int        `json:"rows"`
	Blocks []apiBlock `json:"blocks"`
}

var listParams = []string{"address", "since", "until", "removed", "page", "rows"}

func (s *Server) apiList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	loc, err := s.blocks.BlockLocation(ctx)
	if err != nil {
		s.apiServerError(w, r, err)
		return
	}
	q, page, rows, aerr := parseListQuery(r.URL.RawQuery, loc)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	total, err := s.blocks.CountBlocks(ctx, q)
	if err != nil {
		s.apiServerError(w, r, err)
		return
	}
	ans := apiListAnswer{Total: total, Page: page, Rows: rows, Blocks: []apiBlock{}}
	// A page past the end is empty, not an error: entries may have gone
	// since the client counted them.
	if q.Offset < total {
		entries, err := s.blocks.ListBlocks(ctx, q)
		if err != nil {
			s.apiServerError(w, r, err)
			return
		}
		for _, e := range entries {
			ans.Blocks = append(ans.Blocks, toAPIBlock(e, loc))
		}
	}
	writeJSON(w, http.StatusOK, ans)
}

// parseListQuery reads the list's parameters. Unknown and repeated ones
// are refused rather than ignored, so that a misspelt filter is not taken
// for "everything".
func parseListQuery(raw string, loc *time.Location) (q BlockQuery, page, rows int, _ *apiError) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, 0, 0, badRequest("", "malformed query string: %v", err)
	}
	for k, v := range vals {
		if !slices.Contains(listParams, k) {
			return q, 0, 0, badRequest(k, "unknown parameter %q; known: %s", k, strings.Join(listParams, ", "))
		}
		if len(v) > 1 {
			return q, 0, 0, badRequest(k, "%s is given %d times; give it once", k, len(v))
		}
	}
	page, rows = 1, apiMaxRows
	if v, ok := vals["page"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > apiMaxPage {
			return q, 0, 0, badRequest("page", "page must be from 1 to %d, got %q", apiMaxPage, v[0])
		}
		page = n
	}
	if v, ok := vals["rows"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > apiMaxRows {
			return q, 0, 0, badRequest("rows", "rows must be from 1 to %d, got %q", apiMaxRows, v[0])
		}
		rows = n
	}
	q.Offset, q.Limit = (page-1)*rows, rows
	if v := vals.Get("address"); v != "" {
		if !utf8.ValidString(v) || len(v) > apiMaxAddress {
			return q, 0, 0, badRequest("address", "address must be UTF-8 text of at most %d bytes", apiMaxAddress)
		}
		q.Address = v
	}
	if v, ok := vals["removed"]; ok {
		switch v[0] {
		case "true":
			q.Removed = true
		case "false":
		default:
			return q, 0, 0, badRequest("removed", "removed must be true or false, got %q", v[0])
		}
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		v := vals.Get(f.name)
		if v == "" {
			continue
		}
		t, err := parseAPITime(v, loc)
		if err != nil {
			return q, 0, 0, badRequest(f.name, "%s: %v", f.name, err)
		}
		*f.dst = t
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return q, 0, 0, badRequest("until", "until must be after since")
	}
	return q, page, rows, nil
}

// parseAPITime reads an instant: RFC 3339 with its own offset, or a date
// and time of day in the suppression list's zone, as `posthorn blocks`
// takes them.
func parseAPITime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02", "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	hint := ""
	if strings.Contains(s, " ") && strings.Contains(s, "T") {
		// "+09:00" in a query string arrives as " 09:00".
		hint = `; in a URL, write "+" as %2B`
	}
	return time.Time{}, fmt.Errorf("want RFC 3339 (2026-01-02T15:04:05Z) or YYYY-MM-DD[ HH:MM] in %s, got %q%s", loc, s, hint)
}

// apiAddRequest is the body of POST /api/v1/blocks.
type apiAddRequest struct {
	Address   *string `json:"address"`
	Reason    *string `json:"reason"`
	At        *string `json:"at"`
	Now       bool    `json:"now"`
	WatchDays *int    `json:"watchDays"`
}

const addFields = "address, reason, at, now, watchDays"

func (s *Server) apiAdd(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req apiAddRequest
	if aerr := readJSON(w, r, &req); aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	loc, err := s.blocks.BlockLocation(ctx)
	if err != nil {
		s.apiServerError(w, r, err)
		return
	}
	var when BlockWhen
	reason, watch := "manual", -1
	switch {
	case req.Address == nil || *req.Address == "":
		writeAPIError(w, badRequest("address", "address is required"))
		return
	case len(*req.Address) > apiMaxAddress:
		writeAPIError(w, badRequest("address", "address is longer than %d bytes", apiMaxAddress))
		return
	case req.Reason != nil && *req.Reason == "":
		writeAPIError(w, badRequest("reason", "reason must not be empty: manual (the default), unsubscribe or a bounce class"))
		return
	case req.At != nil && req.Now:
		writeAPIError(w, badRequest("at", "give at or now, not both"))
		return
	case req.WatchDays != nil && (*req.WatchDays < 0 || *req.WatchDays > apiMaxWatch):
		writeAPIError(w, badRequest("watchDays", "watchDays must be from 0 to %d, got %d", apiMaxWatch, *req.WatchDays))
		return
	}
	if req.Reason != nil {
		reason = *req.Reason
	}
	if req.WatchDays != nil {
		watch = *req.WatchDays
	}
	when.Now = req.Now
	if req.At != nil {
		t, err := parseAPITime(*req.At, loc)
		if err != nil {
			writeAPIError(w, badRequest("at", "at: %v", err))
			return
		}
		when.At = t
	}
	e, err := s.blocks.AddBlock(ctx, *req.Address, reason, when, watch)
	if err != nil {
		s.apiBlockError(w, r, err)
		return
	}
	s.log.Info("api: address added to the suppression list", "token", tokenName(ctx), "address", e.Address, "status", e.Status)
	writeJSON(w, http.StatusCreated, toAPIBlock(e, loc))
}

// readJSON reads a request body that must be one JSON object of the
// fields of dst.
func readJSON(w http.ResponseWriter, r *http.Request, dst any) *apiError {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return &apiError{status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: fmt.Sprintf("Content-Type must be application/json, got %q", ct)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiError{status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
				Message: fmt.Sprintf("body is larger than %d bytes", maxAPIBody)}
		}
		return badRequest("", "read body: %v", err)
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD, and store an
	// address no one sent.
	if !utf8.Valid(body) {
		return badRequest("", "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		return badRequest("", "body must hold one JSON object and nothing after it")
	}
	return nil
}

// jsonError turns a decoding error into an answer that names the field.
func jsonError(err error) *apiError {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return badRequest("", "body is empty: want a JSON object with %s", addFields)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "body is not valid JSON: it ends early")
	case errors.As(err, &syntax):
		return badRequest("", "body is not valid JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("", "body must be a JSON object, not %s", typ.Value)
		}
		return badRequest(typ.Field, "%s must be %s, got %s", typ.Field, jsonKind(typ.Type.String()), typ.Value)
	}
	// DisallowUnknownFields' error has no type of its own.
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ := strconv.Unquote(f)
		return badRequest(name, "unknown field %s; known: %s", f, addFields)
	}
	return badRequest("", "body is not valid JSON: %v", err)
}

// jsonKind names a Go type of apiAddRequest in JSON's words.
func jsonKind(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int":
		return "a whole number"
	}
	return "a JSON object"
}

// apiDelete is DELETE /api/v1/blocks/{address}.
func (s *Server) apiDelete(w http.ResponseWriter, r *http.Request) {
	s.apiRemove(w, r, "deleted", s.blocks.DeleteBlock)
}

// apiCancel is POST /api/v1/blocks/{address}/cancel.
func (s *Server) apiCancel(w http.ResponseWriter, r *http.Request) {
	s.apiRemove(w, r, "cancelled", s.blocks.CancelBlock)
}

func (s *Server) apiRemove(w http.ResponseWriter, r *http.Request, done string, op func(context.Context, string) (BlockEntry, error)) {
	ctx := r.Context()
	// PathValue is the segment with its percent-encoding undone, so
	// "a%2Fb@example.org" is the address a/b@example.org; it never
	// becomes a path to anything.
	addr := r.PathValue("address")
	if !utf8.ValidString(addr) || len(addr) > apiMaxAddress {
		writeAPIError(w, badRequest("address", "address must be UTF-8 text of at most %d bytes", apiMaxAddress))
		return
	}
	loc, err := s.blocks.BlockLocation(ctx)
	if err != nil {
		s.apiServerError(w, r, err)
		return
	}
	e, err := op(ctx, addr)
	if err != nil {
		s.apiBlockError(w, r, err)
		return
	}
	s.log.Info("api: suppression-list entry "+done, "token", tokenName(ctx), "address", e.Address)
	writeJSON(w, http.StatusOK, toAPIBlock(e, loc))
}

// apiBlockError answers an error of the block service: its kind decides
// the status, its text (the service's, after the kind) says why.
func (s *Server) apiBlockError(w http.ResponseWriter, r *http.Request, err error) {
	for _, k := range []struct {
		kind   error
		status int
		code   string
	}{
		{ErrBlockInvalid, http.StatusBadRequest, "invalid_request"},
		{ErrBlockExists, http.StatusConflict, "conflict"},
		{ErrNoBlock, http.StatusNotFound, "not_found"},
		{ErrBlockState, http.StatusConflict, "conflict"},
	} {
		if errors.Is(err, k.kind) {
			msg := strings.TrimPrefix(err.Error(), k.kind.Error()+": ")
			e := &apiError{status: k.status, Code: k.code, Message: msg}
			var input *BlockInputError
			if errors.As(err, &input) {
				e.Field = input.Field
			}
			writeAPIError(w, e)
			return
		}
	}
	s.apiServerError(w, r, err)
}
