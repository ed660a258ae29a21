package preview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vitehost/vitehost/preview/internal/request"
)

// This file holds the operations on a session, one path each for the API's
// handlers and the Manager's methods: each is a visit (resolve.go) whose
// act runs the operation on a session of this node, and hands a session of
// another node to elsewhere: the API forwards the request there
// (Manager.forwardTo), a Go caller gets ErrRemote (remoteError). A create
// or an update gets its input as a function, called only where the
// operation runs (visit's check): the API decodes and checks a request's
// body once, on the node that runs the session or makes it, before
// anything is done there, and a node that forwards the request sends its
// bytes on as they came (a Go caller's request is checked up front).

// newProject is a validated create request: the session's dependency set
// and all of its files.
type newProject struct {
	deps  Deps
	files []pendingFile // the template's and the client's, sorted
	sent  checkedFiles  // the client's own files, for a create that updates
	// ownDeps: the request declared its dependencies (a package.json); a
	// create that updates a live session checks them against its own.
	ownDeps bool
	// warnings are what the checks found for the client to know.
	warnings []Warning
}

// declared returns the dependency set the request declared, or nil.
func (p *newProject) declared() Deps {
	if p.ownDeps {
		return p.deps
	}
	return nil
}

// checkCreate validates a create request before anything is written: the
// id, the files, the dependencies (completed when they lack vite; a vite
// spec whose every release is below the floor is refused here, and the
// version npm resolves a range to is checked again before anything is
// installed) and the session quotas.
func (m *Manager) checkCreate(sessionID string, sent []request.Sent, packageJSON json.RawMessage) (*newProject, error) {
	if sessionID != "" && !ValidID(sessionID) {
		return nil, badID("sessionId", sessionID)
	}
	files, err := checkSent(sent, nil, m.opts.Limits, m.opts.allowConfig())
	if err != nil {
		return nil, err
	}
	pkg := []byte(packageJSON)
	if len(pkg) == 0 || string(pkg) == "null" {
		pkg = files.packageJSON
	}
	useTemplate := len(pkg) == 0
	var deps Deps
	var warnings []Warning
	if useTemplate {
		deps, err = templateDeps()
	} else if deps, err = ParsePackageJSON(pkg); err == nil {
		deps, warnings, err = completeDeps(deps)
	}
	if err != nil {
		return nil, err
	}
	if err := checkViteRange(deps["vite"], m.opts.ViteFloor, deps); err != nil {
		return nil, err
	}
	project, err := projectFiles(useTemplate, files.write)
	if err != nil {
		return nil, err
	}
	if err := checkQuota(nil, newUsage(project), m.opts.Limits); err != nil {
		return nil, err
	}
	return &newProject{deps: deps, files: project, sent: files, ownDeps: !useTemplate, warnings: warnings}, nil
}

// updateInput is a checked update request: the files to write, the files
// to delete, and the dependency set it declared, if any.
type updateInput struct {
	files    checkedFiles
	deletes  []string
	declared Deps
}

// checkUpdate validates an update request before anything is written: its
// files, and the dependency set of its package.json (packageJSON, the
// request's packageJson field, or the one among its files), with the vite
// floor for a vite spec that names an exact version.
func (m *Manager) checkUpdate(sent []request.Sent, deletes []string, packageJSON json.RawMessage) (*updateInput, error) {
	files, err := checkSent(sent, deletes, m.opts.Limits, m.opts.allowConfig())
	if err != nil {
		return nil, err
	}
	in := &updateInput{files: files, deletes: deletes}
	if pkg := []byte(packageJSON); len(pkg) > 0 && string(pkg) != "null" {
		in.files.packageJSON = pkg
	}
	if in.files.packageJSON == nil {
		return in, nil
	}
	deps, err := ParsePackageJSON(in.files.packageJSON)
	if err == nil {
		// As a create completes it; an exact vite below the floor is
		// refused here, a range once resolved.
		deps, _, err = completeDeps(deps)
	}
	if err == nil {
		err = checkViteRange(deps["vite"], m.opts.ViteFloor, deps)
	}
	if err != nil {
		return nil, err
	}
	in.declared = deps
	return in, nil
}

// Create validates req, writes its files into a new session directory,
// installs (or reuses) its dependencies, starts its dev server and returns
// once the preview URL serves the page. With the id of a live session of
// this node it updates that session instead (Info.Update says what the
// update did), or fails with ErrConflict when req declares another
// dependency set; a live session of another node is ErrRemote (the API
// forwards those). With a NodeAddr, the session's files go to the Store
// before anything starts; a Store that cannot be reached fails the create
// with ErrUnavailable.
func (m *Manager) Create(ctx context.Context, req *CreateRequest) (*Info, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.running.Done()
	p, err := m.checkCreate(req.SessionID, sentFiles(req.Files, m.opts.Limits), req.PackageJSON)
	if err != nil {
		return nil, err
	}
	return m.createSession(ctx, req.SessionID, func() (*newProject, error) { return p, nil }, remoteError)
}

// createSession makes a session of the project that project returns (the
// request checked, see the top of this file) on this node; with the id of
// a session it updates that session where it is instead, and makes it
// here when it does not exist. project may be called more than once.
func (m *Manager) createSession(ctx context.Context, id string, project func() (*newProject, error), elsewhere func(location) error) (*Info, error) {
	if id == "" {
		// A new session runs on the node that got the request.
		p, err := project()
		if err != nil {
			return nil, err
		}
		return m.create(ctx, NewID(), p)
	}
	if !ValidID(id) {
		return nil, badID("sessionId", id)
	}
	info, err := m.updateNamed(ctx, id, project, elsewhere)
	if !errors.Is(err, errUnknown) {
		return info, err
	}
	p, err := project()
	if err != nil {
		return nil, err
	}
	info, err = m.create(ctx, id, p)
	if errors.Is(err, errTaken) {
		// Another request created it meanwhile: update that one.
		return m.updateNamed(ctx, id, project, elsewhere)
	}
	return info, err
}

// updateNamed is the update that a create naming a live session makes: it
// keeps the session's dependency set (ErrConflict for another).
func (m *Manager) updateNamed(ctx context.Context, id string, project func() (*newProject, error), elsewhere func(location) error) (*Info, error) {
	check := func() error { _, err := project(); return err }
	return visit(ctx, m, id, adoptOrphan, check, func(loc location) (*Info, error) {
		if loc.remote {
			return nil, elsewhere(loc)
		}
		p, err := project()
		if err != nil {
			return nil, err
		}
		res, err := m.update(ctx, loc.s, p.sent, nil, p.declared(), false)
		if err != nil {
			return nil, err
		}
		info := m.info(loc.s.record())
		info.Update = res
		return info, nil
	})
}

// errTaken is a create whose id another request took meanwhile (on this
// node or another): the caller updates that session instead.
var errTaken = fmt.Errorf("%w: another request created the session meanwhile", ErrConflict)

// create makes session id of project p on this node and starts it; it
// returns once the page is served.
func (m *Manager) create(ctx context.Context, id string, p *newProject) (*Info, error) {
	now := time.Now()
	if old := m.local(id); old != nil && old.expired(now) {
		// A client that names its sessions may create one again before the
		// janitor removed its expired predecessor.
		m.drop(context.WithoutCancel(ctx), old, "expired")
	}
	s := m.newSession(Record{ID: id, Status: StatusInstalling, CreatedAt: now, ExpiresAt: now.Add(m.opts.TTL)})
	if err := m.register(s); err != nil {
		return nil, err
	}
	if err := m.publish(ctx, s, p); err != nil {
		s.abort(err)
		m.remove(context.WithoutCancel(ctx), s, "create failed")
		return nil, err
	}
	s.addWarnings(p.warnings)
	if err := s.run(ctx, p.deps, p.files); err != nil {
		s.log.Warn("vitehost/preview: create failed", "err", err)
		m.drop(context.WithoutCancel(ctx), s, "create failed")
		return nil, err
	}
	info := m.info(s.record())
	info.Warnings = s.warningList()
	return info, nil
}

// publish creates the record of the new session s in the store (failing
// when the id is taken) and, on a node of several, saves its files there.
func (m *Manager) publish(ctx context.Context, s *session, p *newProject) error {
	epoch, ok, err := m.store.Claim(ctx, 0, s.record())
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: session %s", errTaken, s.id)
	}
	s.setEpoch(epoch)
	if !m.clustered() {
		return nil
	}
	all := make(map[string][]byte, len(p.files)+1)
	for _, f := range p.files {
		all[f.name] = f.data
	}
	all["package.json"] = p.deps.PackageJSON()
	if err := m.store.SaveFiles(ctx, s.id, epoch, all, nil); err != nil {
		if derr := m.store.Delete(context.WithoutCancel(ctx), s.id, epoch); derr != nil {
			s.log.Warn("vitehost/preview: delete record", "err", derr)
		}
		return err
	}
	return nil
}

// Update writes req's files into session id (all of them or none), removes
// the files it names for deletion, and reports what Vite's HMR did. With a
// NodeAddr, the store commits the files before they replace the old ones on
// disk: when it cannot be reached the update fails with ErrUnavailable and
// nothing is written. An update that would take the session past a quota
// of Limits is a *QuotaError. A package.json (req.PackageJSON, or one among
// the files) with another dependency set than the session's changes the set
// (depschange.go): it installs while the dev server serves, then the server
// restarts on it; a set that cannot be installed is a *RequestError and
// changes nothing. A session that another node runs is ErrRemote (the API
// forwards those).
func (m *Manager) Update(ctx context.Context, id string, req *UpdateRequest) (*UpdateResult, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.running.Done()
	in, err := m.checkUpdate(sentFiles(req.Files, m.opts.Limits), req.Delete, req.PackageJSON)
	if err != nil {
		return nil, err
	}
	return m.updateSession(ctx, id, func() (*updateInput, error) { return in, nil }, remoteError)
}

// updateSession applies the update that input returns (the request
// checked, see the top of this file) to session id where it is. input may
// be called more than once.
func (m *Manager) updateSession(ctx context.Context, id string, input func() (*updateInput, error), elsewhere func(location) error) (*UpdateResult, error) {
	check := func() error { _, err := input(); return err }
	return visit(ctx, m, id, adoptOrphan, check, func(loc location) (*UpdateResult, error) {
		if loc.remote {
			return nil, elsewhere(loc)
		}
		in, err := input()
		if err != nil {
			return nil, err
		}
		return m.update(ctx, loc.s, in.files, in.deletes, in.declared, true)
	})
}

// update applies an update to session s of this node. declared is the
// dependency set the request declared, if any: the session's own is
// accepted (and its package.json ignored); another is installed and the
// dev server restarts on it when change allows it (an update), and is
// ErrConflict otherwise (a create that names a live session). When the
// store refuses the update (ErrFenced), another node owns the session now:
// s stops here at once, and visit locates the session again.
func (m *Manager) update(ctx context.Context, s *session, files checkedFiles, deletes []string, declared Deps, change bool) (*UpdateResult, error) {
	s.touch()
	res, err := s.update(ctx, files, deletes, declared, change, m.opts.Limits)
	if errors.Is(err, ErrFenced) {
		m.remove(context.WithoutCancel(ctx), s, "claimed by another node")
	}
	return res, err
}

// Status returns session id's info, from the Store when another node runs
// it. A session whose node is gone is taken over by this node, and its dev
// server starts (as a request to its preview does), so that the status is
// that of a session that a node runs rather than that of a record nobody
// serves.
func (m *Manager) Status(ctx context.Context, id string) (*Info, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.running.Done()
	return m.sessionStatus(ctx, id, nil)
}

// sessionStatus returns session id's info where it is: see Status. A nil
// elsewhere answers a session of another node from its record.
func (m *Manager) sessionStatus(ctx context.Context, id string, elsewhere func(location) error) (*Info, error) {
	return visit(ctx, m, id, adoptOrphan, nil, func(loc location) (*Info, error) {
		if loc.remote && elsewhere != nil {
			return nil, elsewhere(loc)
		}
		return m.status(loc), nil
	})
}

func (m *Manager) status(loc location) *Info {
	if loc.s != nil {
		return m.info(loc.s.record())
	}
	return m.info(loc.rec)
}

// Delete stops session id's dev server, removes its directory and forgets
// it, in the Store first: when the Store cannot be reached, nothing is
// removed. A session that another node runs is ErrRemote (the API forwards
// those).
func (m *Manager) Delete(ctx context.Context, id string) error {
	if err := m.begin(); err != nil {
		return err
	}
	defer m.running.Done()
	return m.deleteSession(ctx, id, remoteError)
}

// deleteSession removes session id where it is: a session whose node is
// gone is removed from the store without being started.
func (m *Manager) deleteSession(ctx context.Context, id string, elsewhere func(location) error) error {
	return visitDo(ctx, m, id, orphanAsRecord, func(loc location) error {
		if loc.remote {
			return elsewhere(loc)
		}
		return m.delete(ctx, loc)
	})
}

// delete removes the session at loc: one of this node, or the record of
// one whose node is gone. ErrFenced means another node claimed it
// meanwhile.
func (m *Manager) delete(ctx context.Context, loc location) error {
	if loc.s == nil {
		return m.store.Delete(ctx, loc.rec.ID, loc.rec.Epoch)
	}
	err := m.store.Delete(ctx, loc.s.id, loc.s.epoch())
	if err != nil && !errors.Is(err, ErrFenced) {
		return err
	}
	why := "deleted"
	if err != nil {
		why = "claimed by another node"
	}
	m.remove(ctx, loc.s, why)
	return err
}
