from galgen.cli import main

main()
