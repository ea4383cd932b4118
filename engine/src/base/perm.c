/* perm: files and directories anyone can write (perm.h). */
#include "base/perm.h"

#include <stddef.h>
#include <sys/stat.h>

const char *rbk_perm_open_to_all(const char *const *paths, unsigned *mode)
{
	for (; *paths; paths++) {
		struct stat sb;
		if (stat(*paths, &sb) == 0 && (sb.st_mode & S_IWOTH)) {
			*mode = (unsigned)(sb.st_mode & 07777);
			return *paths;
		}
	}
	return NULL;
}
