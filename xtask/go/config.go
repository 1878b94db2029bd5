package main

import (
	"github.com/cometbft/cometbft/config"
)

// runConfig implements mode "config": the reference writes its default
// config.toml (config.DefaultConfig(), as `cometbft init` does) to --out,
// then reports "done".
func runConfig(args []string) error {
	fs := newFlagSet("config")
	out := fs.String("out", "", "where to write config.toml")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	config.WriteConfigFile(*out, config.DefaultConfig())
	n := 1
	emit(doneEvent{Event: "done", Messages: &n})
	return nil
}
