#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int pod_addr(struct in_addr *out) {
  const char *ip = getenv("KUBESANDBOX_POD_IP");
  return ip != NULL && inet_pton(AF_INET, ip, out) == 1;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  static int (*real)(int, const struct sockaddr *, socklen_t);
  if (!real) real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
  struct in_addr pod;
  if (addr != NULL && pod_addr(&pod)) {
    if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
      struct sockaddr_in a = *(const struct sockaddr_in *)addr;
      if (a.sin_addr.s_addr == htonl(INADDR_ANY)) {
        a.sin_addr = pod;
        return real(fd, (const struct sockaddr *)&a, sizeof a);
      }
    } else if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
      struct sockaddr_in6 a = *(const struct sockaddr_in6 *)addr;
      int v6only = 1;
      socklen_t size = sizeof v6only;
      getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &size);
      if (IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr) && !v6only) {
        memset(&a.sin6_addr, 0, sizeof a.sin6_addr);
        a.sin6_addr.s6_addr[10] = 0xff;
        a.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&a.sin6_addr.s6_addr[12], &pod, 4);
        return real(fd, (const struct sockaddr *)&a, sizeof a);
      }
    }
  }
  return real(fd, addr, len);
}

static int in_hosts(const char *name, char *ip, size_t size) {
  const char *path = getenv("KUBESANDBOX_HOSTS");
  FILE *f = path ? fopen(path, "r") : NULL;
  char line[512], addr[64], host[400];
  int found = 0;
  if (!f) return 0;
  while (!found && fgets(line, sizeof line, f)) {
    if (sscanf(line, "%63s %399s", addr, host) == 2 && strcasecmp(host, name) == 0) {
      snprintf(ip, size, "%s", addr);
      found = 1;
    }
  }
  fclose(f);
  return found;
}

static int lookup(const char *node, char *ip, size_t size) {
  const char *self = getenv("KUBESANDBOX_HOSTNAME");
  const char *pod = getenv("KUBESANDBOX_POD_IP");
  char name[256], candidate[400];
  size_t n = strlen(node);
  if (pod == NULL || n == 0 || n >= sizeof name) return 0;
  memcpy(name, node, n + 1);
  if (name[n - 1] == '.') name[n - 1] = 0;
  if (strcasecmp(name, "localhost") == 0 || (self && strcasecmp(name, self) == 0)) {
    snprintf(ip, size, "%s", pod);
    return 1;
  }
  if (in_hosts(name, ip, size)) return 1;
  const char *search = getenv("KUBESANDBOX_SEARCH");
  char domains[512];
  snprintf(domains, sizeof domains, "%s", search ? search : "");
  for (char *save = NULL, *d = strtok_r(domains, " ", &save); d; d = strtok_r(NULL, " ", &save)) {
    snprintf(candidate, sizeof candidate, "%s.%s", name, d);
    if (in_hosts(candidate, ip, size)) return 1;
  }
  return 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
  static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
  if (!real)
    real = (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))
        dlsym(RTLD_NEXT, "getaddrinfo");
  char ip[64];
  if (node != NULL && lookup(node, ip, sizeof ip)) return real(ip, service, hints, res);
  return real(node, service, hints, res);
}

/* The pod's own /etc/hosts line: its address maps back to its FQDN (socket.getfqdn()). */
int gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret, char *buf,
                    size_t buflen, struct hostent **result, int *h_errnop) {
  static int (*real)(const void *, socklen_t, int, struct hostent *, char *, size_t,
                     struct hostent **, int *);
  if (!real)
    real = (int (*)(const void *, socklen_t, int, struct hostent *, char *, size_t,
                    struct hostent **, int *))dlsym(RTLD_NEXT, "gethostbyaddr_r");
  const char *fqdn = getenv("KUBESANDBOX_FQDN");
  struct in_addr pod;
  size_t n = fqdn ? strlen(fqdn) + 1 : 0;
  size_t need = 4 + n + 3 * sizeof(char *);
  if (fqdn && type == AF_INET && len == 4 && pod_addr(&pod) && memcmp(addr, &pod, 4) == 0 &&
      buflen >= need + sizeof(char *)) {
    size_t pad = (sizeof(char *) - (uintptr_t)buf % sizeof(char *)) % sizeof(char *);
    char **pointers = (char **)(buf + pad);
    char *data = (char *)(pointers + 3);
    memcpy(data, addr, 4);
    memcpy(data + 4, fqdn, n);
    pointers[0] = data;  /* h_addr_list */
    pointers[1] = NULL;
    pointers[2] = NULL;  /* h_aliases */
    ret->h_name = data + 4;
    ret->h_aliases = &pointers[2];
    ret->h_addrtype = AF_INET;
    ret->h_length = 4;
    ret->h_addr_list = &pointers[0];
    *result = ret;
    return 0;
  }
  return real(addr, len, type, ret, buf, buflen, result, h_errnop);
}

int gethostname(char *name, size_t len) {
  static int (*real)(char *, size_t);
  if (!real) real = (int (*)(char *, size_t))dlsym(RTLD_NEXT, "gethostname");
  const char *self = getenv("KUBESANDBOX_HOSTNAME");
  if (self == NULL) return real(name, len);
  if (strlen(self) >= len) return -1;
  strcpy(name, self);
  return 0;
}
