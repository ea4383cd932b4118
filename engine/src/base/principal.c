/* principal: the operating-system user running rbk. */
#include "base/principal.h"
#include "base/mem.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

char *rbk_principal(void)
{
	uid_t uid = geteuid();
	struct passwd *pw = getpwuid(uid);
	char host[256] = "";
	if (gethostname(host, sizeof host - 1) < 0 || !host[0])
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	/* An actor is one line (the store's canonical form relies on it). */
	host[strcspn(host, "\n")] = '\0';
	if (pw && pw->pw_name && pw->pw_name[0] && !strpbrk(pw->pw_name, "@\n"))
		return rbk_xasprintf("%s@%s", pw->pw_name, host);
	return rbk_xasprintf("%lu@%s", (unsigned long)uid, host);
}

char *rbk_principal_user(const char *principal, char *buf, size_t n)
{
	snprintf(buf, n, "%.*s", (int)strcspn(principal, "@"), principal);
	return buf;
}

bool rbk_principal_matches(const char *name, const char *principal)
{
	size_t nu = strcspn(name, "@"), pu = strcspn(principal, "@");
	if (!nu || nu != pu || strncmp(name, principal, nu) != 0)
		return false;
	if (!name[nu])
		return true; /* no host: that user on any host */
	return principal[pu] == '@' && !strcmp(name + nu + 1, principal + pu + 1);
}
