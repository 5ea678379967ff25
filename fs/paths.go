package fs

// PathOf names the staged file name in folder parentID by its path under
// the mount ("/Project/folder/name") when the folder has been visited since
// the mount started, and by "parentID/name" otherwise (known is false).
func (fsys *FS) PathOf(parentID, name string) (path string, known bool) {
	fsys.mu.Lock()
	d := fsys.dirs[parentID]
	fsys.mu.Unlock()
	if d == nil {
		return parentID + "/" + name, false
	}
	return d.pathOf(name), true
}
