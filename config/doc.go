package config

import "slices"

// Field documents one key of the config file.
type Field struct {
	// Key is the dotted key, such as "maillog.start". A table has a row of
	// its own, keyed by its name ("maillog"), before its keys.
	Key string
	// Type is one of "table", "string", "boolean", "integer", "duration"
	// and "list of strings".
	Type string
	// Default is the default value in TOML syntax, such as `"end"`, `5000`
	// or `[]`. It is empty for tables.
	Default string
	// Doc is the description: one paragraph of user documentation.
	Doc string
}

// Doc returns one row per key of the config file, tables first then their
// keys, in the order of the file. The rows are generated from the doc
// comments of Config and its tables (go test -run TestDocTable -update).
func Doc() []Field {
	return slices.Clone(fields)
}

// field returns the row of key, or nil if the file has no such key.
func field(key string) *Field {
	for i := range fields {
		if fields[i].Key == key {
			return &fields[i]
		}
	}
	return nil
}
