package testenv

import (
	"os"
	"path/filepath"

	"github.com/vitehost/vitehost/internal/flock"
)

// cachedOnce returns the path rel inside cache/name-key, making that
// directory first when it is missing: fill writes into a new staging
// directory of cache, which then takes the final name, so that the final
// directory is complete whenever it exists. Concurrent callers, in this
// process or in other processes, wait for one fill.
func cachedOnce(cache, name, key, rel string, fill func(stage string) error) (string, error) {
	final := filepath.Join(cache, name+"-"+key)
	want := filepath.Join(final, rel)
	if _, err := os.Stat(want); err == nil {
		return want, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	unlock, err := flock.Lock(final + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(want); err == nil {
		return want, nil // another process made it while we waited
	}
	stage, err := os.MkdirTemp(cache, name+"-stage-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	if err := fill(stage); err != nil {
		return "", err
	}
	if err := os.Rename(stage, final); err != nil {
		return "", err
	}
	return want, nil
}
