package ui

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/zipaes"
)

// inboundCSVHeader is WIRE.md §5's column list for the inbound log.
var inboundCSVHeader = []string{"received", "status", "from", "to", "hostName", "messageId", "filterName", "reason"}

// minZipPassword is the shortest password the download accepts. The
// archive's key is derived with only 1000 rounds of PBKDF2 (fixed by the
// AE-2 format), so a short password falls to guessing offline.
const minZipPassword = 8

// inboundDownloadView is the password form of the inbound log download.
type inboundDownloadView struct {
	Available bool
	Search    inboundSearch
	Err       string // catalog key of the password field's error
}

// inboundDownloadPage asks for the archive's password (GET
// /inbound/download); the search travels in hidden fields.
func (s *Server) inboundDownloadPage(w http.ResponseWriter, r *http.Request) {
	search := parseInboundSearch(r.URL.Query(), s.loc)
	search.Page = 0
	v := inboundDownloadView{Available: s.inbound != nil, Search: search}
	status := http.StatusOK
	if !search.valid() {
		status = http.StatusBadRequest
	}
	s.render(w, r, status, inboundDownloadPage(v))
}

// inboundZip streams every row the search selects as WIRE.md §5's CSV
// inside an AES-256 ZIP (POST /inbound.zip). It is a POST so that the
// password is neither in the URL nor in the browser's history, and it
// carries the form token like every other POST.
func (s *Server) inboundZip(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.inbound == nil {
		http.Error(w, "404 not found: the inbound log is not available", http.StatusNotFound)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "400 bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	search := parseInboundSearch(r.PostForm, s.loc)
	search.Page = 0
	password := r.PostForm.Get("password")
	v := inboundDownloadView{Available: true, Search: search}
	switch {
	case !search.valid():
	case utf8.RuneCountInString(password) < minZipPassword:
		v.Err = "zip.short"
	case password != r.PostForm.Get("password_confirm"):
		v.Err = "zip.mismatch"
	}
	if !search.valid() || v.Err != "" {
		s.render(w, r, http.StatusUnprocessableEntity, inboundDownloadPage(v))
		return
	}
	// A million rows take seconds to write to a slow client: lift the
	// server's write deadline for this response.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	now := s.now().In(s.loc)
	name := "posthorn-inbound-" + now.Format("20060102-150405") + ".zip"
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	q := event.InboundQuery{Since: search.Since, Until: search.Until, Statuses: search.Status}
	rows := 0
	err := zipaes.Write(w, "inbound-log.csv", password, now, func(zw io.Writer) error {
		var err error
		rows, err = s.writeInboundCSV(ctx, q, zw)
		return err
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		// The status line is sent: the client sees a truncated archive,
		// which no unzip program accepts.
		s.log.Error("console: inbound log download stopped", "rows", rows, "err", err)
		return
	}
	s.log.Info("console: inbound log downloaded", "user", infoFrom(ctx).user, "rows", rows)
}

// writeInboundCSV writes the rows q selects, oldest first, UTF-8 with LF
// line ends (encoding/csv's default).
func (s *Server) writeInboundCSV(ctx context.Context, q event.InboundQuery, w io.Writer) (int, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(inboundCSVHeader); err != nil {
		return 0, err
	}
	rows := 0
	row := make([]string, len(inboundCSVHeader))
	err := s.inbound.EachInboundLog(ctx, q, func(e *event.InboundLogEntry) error {
		row = append(row[:0], e.Time.In(s.loc).Format(time.RFC3339), string(e.Status), e.From, e.To, e.Host,
			e.MessageID, e.Filter, e.Reason)
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		rows++
		if err := cw.Write(row); err != nil {
			return err
		}
		return ctx.Err()
	})
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	return rows, err
}
