package cache

import "github.com/dgraph-io/badger/v4"

type badgerTxn = badger.Txn

func badgerIterOpts(prefix []byte) badger.IteratorOptions {
	return badger.IteratorOptions{Prefix: prefix}
}
