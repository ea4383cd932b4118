/* assets: the console's page, script and style, built into the module as
 * they are written (no build step): serve/ui/console.{html,js,css}. */
#define ASSET(name, file)                                                                                   \
	__asm__(".section .rodata\n"                                                                         \
		".global rbk_serve_" #name "\n"                                                              \
		".global rbk_serve_" #name "_len\n"                                                          \
		"rbk_serve_" #name ":\n"                                                                     \
		".incbin \"" file "\"\n"                                                                     \
		"rbk_serve_" #name "_end:\n"                                                                 \
		".byte 0\n"                                                                                  \
		".balign 4\n"                                                                                \
		"rbk_serve_" #name "_len:\n"                                                                 \
		".int rbk_serve_" #name "_end - rbk_serve_" #name "\n"                                       \
		".previous\n")

ASSET(html, "engine/src/serve/ui/console.html");
ASSET(js, "engine/src/serve/ui/console.js");
ASSET(css, "engine/src/serve/ui/console.css");
