package deps

import (
	"maps"
	"slices"
	"strings"
)

// This file completes a client's dependency set that lacks vite: AI
// builders export package.json files whose dev server came from their own
// service (a Lovable export without vite or @vitejs/plugin-react).

// frameworkPlugins are the Vite plugins that make a project a framework's:
// a set with one of them and no vite gets vite alone.
var frameworkPlugins = []string{
	"@vitejs/plugin-react", "@vitejs/plugin-react-swc", "@vitejs/plugin-vue", "@vitejs/plugin-vue-jsx",
	"@sveltejs/vite-plugin-svelte", "@sveltejs/kit", "@preact/preset-vite", "vite-plugin-solid",
	"@react-router/dev", "@tanstack/react-start",
}

// Complete returns set ready to run, and what was added to it: a set with
// vite as it is; a React project (react, and no framework plugin) gets
// template's vite and @vitejs/plugin-react; a project with a framework
// plugin gets the newest vite line its plugins accept. A set with neither
// React nor a framework plugin is an *InvalidError that says what is
// missing.
func Complete(set, template Set) (Set, []Warning, error) {
	out := maps.Clone(set)
	if out == nil {
		out = Set{}
	}
	if set.Has("vite") {
		return out, nil, nil
	}
	var plugin string
	for _, p := range frameworkPlugins {
		if set.Has(p) {
			plugin = p
			break
		}
	}
	var added []string
	switch {
	case plugin != "":
		out["vite"] = template["vite"]
		if line, _ := acceptedLine(set); line < newestLine {
			if floor, ok := viteFloors[line]; ok {
				out["vite"] = "^" + floor.String()
			} else {
				out["vite"] = "^" + version{line, 0, 0, ""}.String()
			}
		}
		added = append(added, "vite@"+out["vite"])
	case set.Has("react"):
		for _, name := range []string{"vite", "@vitejs/plugin-react"} {
			out[name] = template[name]
			added = append(added, name+"@"+template[name])
		}
	default:
		return nil, nil, invalid(CodeBadDependency, "the package.json has no vite, and neither react nor a Vite framework plugin (%s): "+
			"add vite and the plugin of the project's framework", strings.Join(slices.Sorted(slices.Values(frameworkPlugins[:6])), ", "))
	}
	return out, []Warning{{Code: WarnViteAdded, Message: "the package.json has no vite; the preview added " + strings.Join(added, " and ") +
		": add them to the project's devDependencies to run it elsewhere"}}, nil
}
