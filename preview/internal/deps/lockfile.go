package deps

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
)

// This file reads the package-lock.json that resolving a dependency set
// gives (npm install --package-lock-only): specs that npm resolves to the
// same packages ("^8.0.0", "8.x" and ">=8 <9" today) get the same key, and
// so share one install.

// resolution is what a resolved dependency set installs.
type resolution struct {
	// key names the install: a hash of every package the lockfile pins
	// (path, version, tarball and integrity), the root's declared specs
	// left out.
	key string
	// vite is the version of vite the lockfile pins at the top level.
	vite string
	// packages is how many packages the lockfile pins.
	packages int
	// lockfile is the lockfile's name: package-lock.json, pnpm-lock.yaml.
	lockfile string
	// legacyPeers: npm refused the set for a peer conflict, and it was
	// resolved (and is installed) with --legacy-peer-deps.
	legacyPeers bool
}

// parseLockfile reads an npm lockfile of version 2 or 3.
func parseLockfile(data []byte) (resolution, error) {
	var lock struct {
		Packages map[string]struct {
			Version   string `json:"version"`
			Resolved  string `json:"resolved"`
			Integrity string `json:"integrity"`
			Link      bool   `json:"link"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		return resolution{}, err
	}
	if len(lock.Packages) == 0 {
		return resolution{}, errors.New("the lockfile has no packages section (npm 7 or later writes one)")
	}
	paths := make([]string, 0, len(lock.Packages))
	for p := range lock.Packages {
		if p != "" { // the root: its specs are what differ between equal sets
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	h := sha256.New()
	for _, p := range paths {
		e := lock.Packages[p]
		for _, s := range []string{p, e.Version, e.Resolved, e.Integrity} {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
		if e.Link {
			h.Write([]byte("link\x00"))
		}
	}
	return resolution{
		key:      hex.EncodeToString(h.Sum(nil))[:24],
		vite:     lock.Packages["node_modules/vite"].Version,
		packages: len(paths),
	}, nil
}
