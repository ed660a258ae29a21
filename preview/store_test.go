package preview_test

import (
	"testing"

	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/storetest"
)

func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) preview.Store { return &preview.MemoryStore{} })
}
