package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
)

// staticFiles are the console's scripts and styles: htmx as published on
// the npm registry (static/README.md says which version and how to update
// it), and our own small app.js and app.css. No build step.
//
//go:embed static/*.js static/*.css
var staticFiles embed.FS

// staticVersion maps each asset to a hash of its content. Pages link to
// /static/NAME?v=HASH, so an asset can be cached for a long time and a new
// binary's assets are fetched at once.
var staticVersion = func() map[string]string {
	out := map[string]string{}
	entries, _ := fs.ReadDir(staticFiles, "static")
	for _, e := range entries {
		b, _ := fs.ReadFile(staticFiles, "static/"+e.Name())
		sum := sha256.Sum256(b)
		out[e.Name()] = hex.EncodeToString(sum[:6])
	}
	return out
}()

// staticURL is the versioned URL of an asset.
func staticURL(name string) string {
	return "/static/" + name + "?v=" + staticVersion[name]
}

var staticServer = http.FileServerFS(staticFiles)

func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Path[len("/static/"):]
	v, ok := staticVersion[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("v") == v {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	staticServer.ServeHTTP(w, r)
}
