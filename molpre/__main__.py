from molpre.cli import main

main()
