package ui_test

import (
	"github.com/posthorn/posthorn/internal/console"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

// The console's tests read the post log through the adapter cmd/posthorn
// wires, with small pages so that the CSVs exercise its paging.
func init() {
	ui.StorePosts = func(s *sqlite.Store) ui.PostLog { return console.Posts{Store: s, Page: 7} }
}
