package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/synfs/synfs/remote"
	"github.com/synfs/synfs/remote/synapse"
)

// probe returns what Connectivity.Run asks while uploads wait. While
// Synapse is unreachable it asks for Synapse's version, the cheapest call.
// While Synapse refuses the access token, it reads the token again from
// where it came from (~/.synapseConfig, or the --config file: a person
// fixes a revoked token there), and asks whose it is: uploads resume once
// Synapse accepts a token of the user whose files the cache holds.
func probe(conn *remote.Connectivity, client *synapse.Client, f mountFlags, emu bool, userID string, log *slog.Logger) func(context.Context) error {
	var last string
	return func(ctx context.Context) error {
		if !conn.State().TokenRefused {
			return client.Probe(ctx)
		}
		if !emu {
			if st, err := synapse.LoadSettings(f.config, f.profile, os.Getenv); err == nil && st.Token != "" && st.Token != last {
				last = st.Token
				if err := client.SetToken(st.Token); err == nil {
					log.Info("trying the access token from " + st.TokenSource)
				}
			}
		}
		id, err := client.ProbeToken(ctx)
		if err != nil {
			return err
		}
		if id != userID {
			return fmt.Errorf("the access token now configured belongs to user %s, but this cache holds files of user %s: configure a token of user %s", id, userID, userID)
		}
		return nil
	}
}
