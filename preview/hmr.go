package preview

import (
	"github.com/vitehost/vitehost/vite"
)

// This file is what an update answers about Vite's HMR: the outcome of the
// update's batch (vite.Server.Hold), as Vite computed it inside the dev
// server.

// HMRType says what Vite did after an update.
type HMRType string

// The values of HMR.Type.
const (
	HMRUpdate     HMRType = "update"      // modules were hot-replaced
	HMRFullReload HMRType = "full-reload" // the page reloads
	HMRNone       HMRType = "none"        // Vite sent nothing: no loaded module uses the files
)

// HMR is what Vite did after an update, as the update response reports it.
type HMR struct {
	// Type is what Vite did.
	Type HMRType `json:"type"`
	// Paths are the modules Vite updated, or the page it reloads ("*" for
	// every page).
	Paths []string `json:"paths"`
	// Error is the first compile error of the update's modules, and of the
	// modules they import that the page had not loaded before, if any.
	Error *CompileError `json:"error,omitempty"`
}

// CompileError is code that Vite could not transform.
type CompileError struct {
	Message string `json:"message"`
	// File is relative to the project root.
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Frame  string `json:"frame,omitempty"`
	Plugin string `json:"plugin,omitempty"`
}

// hmrOutcome returns the HMR answer of a batch's outcome.
func hmrOutcome(r *vite.BatchResult) HMR {
	h := hmrOf(r.Updates, r.FullReload, r.ReloadPath)
	if len(r.Errors) > 0 {
		h.Error = compileError(&r.Errors[0])
	}
	return h
}

// hmrOf returns what Vite's messages did: a full reload, or updates of
// modules, or nothing.
func hmrOf(updates []vite.HotUpdate, fullReload bool, reloadPath string) HMR {
	h := HMR{Type: HMRNone, Paths: []string{}}
	switch {
	case fullReload:
		h.Type = HMRFullReload
		if reloadPath == "" {
			reloadPath = "*"
		}
		h.Paths = append(h.Paths, reloadPath)
	case len(updates) > 0:
		h.Type = HMRUpdate
		seen := map[string]bool{}
		for _, u := range updates {
			if u.Path != "" && !seen[u.Path] {
				seen[u.Path] = true
				h.Paths = append(h.Paths, u.Path)
			}
		}
	}
	return h
}

func compileError(e *vite.CompileError) *CompileError {
	c := CompileError(*e)
	return &c
}
